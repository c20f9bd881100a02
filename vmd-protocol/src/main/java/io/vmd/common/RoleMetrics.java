package io.vmd.common;

import com.sun.management.HotSpotDiagnosticMXBean;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmInfoMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.netty.util.internal.PlatformDependent;
import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What every role exports beside its own meters: the JVM (memory and buffer pools, GC, threads,
 * classes), the process (CPU, uptime, file descriptors), direct memory against its limit, and
 * {@code vmd_build_info} (Prometheus's convention: a gauge of 1 whose labels say which build runs).
 */
public final class RoleMetrics {
  private RoleMetrics() {}

  /**
   * Binds them to {@code registry} for {@code role} (meta, server, gateway, host, up), for the life of
   * the process (the GC meters listen to the JVM's GC notifications until it exits).
   */
  public static void bind(MeterRegistry registry, String role) {
    // Two of ProcessorMetrics' names fail promtool's lint (a "_count" gauge, an abbreviated unit); the
    // CPU usage gauges beside them say what matters.
    registry.config().meterFilter(MeterFilter.deny(id -> id.getName().equals("system.cpu.count")
        || id.getName().equals("process.cpu.time")));
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ClassLoaderMetrics().bindTo(registry);
    new JvmInfoMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    new FileDescriptorMetrics().bindTo(registry);
    new JvmGcMetrics().bindTo(registry);
    Gauge.builder("vmd.build.info", () -> 1)
        .description("The running build: its version, role and Java runtime (always 1)")
        .tag("version", version()).tag("role", role).tag("java_version", Runtime.version().toString())
        .register(registry);
    if (hotSpotThreads() != null) {
      FunctionCounter.builder("vmd.jvm.allocated", HIGHEST_ALLOCATED, h -> allocatedBytes()).baseUnit("bytes")
          .description("Heap bytes every thread allocated since the JVM started (HotSpot's count): the data path "
              + "aims at none per request, so its rate is the garbage a load makes")
          .register(registry);
    }
    long max = maxDirectMemory();
    Gauge.builder("vmd.direct.memory.max", () -> max).baseUnit("bytes")
        .description("The most direct (off-heap) memory this JVM may use: -XX:MaxDirectMemorySize, else the heap's maximum")
        .register(registry);
    // Netty's pooled buffers bypass the JDK's direct buffer pool (jvm_buffer_memory_used_bytes): its own count.
    Gauge.builder("vmd.netty.direct.memory.used", PlatformDependent::usedDirectMemory).baseUnit("bytes")
        .description("Direct memory Netty has allocated (its buffer pools), or -1 where it does not count it")
        .register(registry);
  }

  /**
   * Heap bytes every thread of this JVM has allocated since it started, exited threads included; -1
   * where the JVM does not count them.
   */
  public static long allocatedBytes() {
    com.sun.management.ThreadMXBean threads = hotSpotThreads();
    // HotSpot's sum is an approximation (an exiting thread's count moves from the live threads' sum to the
    // exited ones'); a counter must never step back, so the highest value read is what is reported.
    return threads == null ? -1 : HIGHEST_ALLOCATED.accumulateAndGet(threads.getTotalThreadAllocatedBytes(), Math::max);
  }

  private static final AtomicLong HIGHEST_ALLOCATED = new AtomicLong();

  private static com.sun.management.ThreadMXBean hotSpotThreads() {
    if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
        && t.isThreadAllocatedMemorySupported() && t.isThreadAllocatedMemoryEnabled()) {
      return t;
    }
    return null;
  }

  /** The version in the jar's manifest, or "dev" when run from classes. */
  public static String version() {
    String v = RoleMetrics.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }

  private static long maxDirectMemory() {
    try {
      String v = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class).getVMOption("MaxDirectMemorySize")
          .getValue();
      long set = Long.parseLong(v);
      return set > 0 ? set : Runtime.getRuntime().maxMemory();
    } catch (RuntimeException e) {
      return Runtime.getRuntime().maxMemory();
    }
  }
}
