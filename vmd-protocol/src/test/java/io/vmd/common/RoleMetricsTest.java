package io.vmd.common;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.junit.jupiter.api.Test;

class RoleMetricsTest {
  /** Keeps the arrays reachable, so the JIT cannot prove them dead and skip allocating them. */
  private static volatile Object sink;

  @Test
  void countsTheHeapBytesThisJvmAllocates() {
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "server");
    FunctionCounter allocated = registry.get("vmd.jvm.allocated").functionCounter();
    double before = allocated.count();
    for (int i = 0; i < 16; i++) {
      sink = new byte[1 << 20];
    }
    assertThat(allocated.count() - before).as("bytes counted for 16 MiB of arrays").isGreaterThanOrEqualTo(16 << 20);
    long counted = (long) allocated.count();
    assertThat(RoleMetrics.allocatedBytes()).as("never below what the counter said before").isGreaterThanOrEqualTo(counted);
    assertThat(registry.scrape()).contains("# TYPE vmd_jvm_allocated_bytes_total counter");
  }
}
