package io.vmd.nbd;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.vmd.client.Repairer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Per-namespace counters of the gateway. Page-ins (pages read) and page-outs (pages written) are
 * the VM's swap rate: the working-set tracker reads them, Prometheus gets them as counters.
 */
public final class ExportMetrics implements Repairer.Listener {
  private final Counter pagesIn;
  private final Counter pagesOut;
  private final Counter bytesRead;
  private final Counter bytesWritten;
  private final Counter pagesTrimmed;
  private final Timer[] latency = new Timer[NbdProtocol.CMD_BLOCK_STATUS + 1];
  private final Counter errors;
  private final Counter rereplicated;
  private final AtomicLong underReplicated = new AtomicLong();

  ExportMetrics(MeterRegistry registry, String namespace) {
    pagesIn = Counter.builder("vmd.gateway.pages.in").description("pages read (page-ins)")
        .tag("namespace", namespace).register(registry);
    pagesOut = Counter.builder("vmd.gateway.pages.out").description("pages written (page-outs)")
        .tag("namespace", namespace).register(registry);
    bytesRead = Counter.builder("vmd.gateway.read").description("bytes read by NBD clients").baseUnit("bytes").tag("namespace", namespace).register(registry);
    bytesWritten = Counter.builder("vmd.gateway.written").description("bytes written by NBD clients").baseUnit("bytes").tag("namespace", namespace).register(registry);
    pagesTrimmed = Counter.builder("vmd.gateway.pages.trimmed").description("pages given back by TRIM or WRITE_ZEROES").tag("namespace", namespace).register(registry);
    errors = Counter.builder("vmd.gateway.errors").description("NBD requests answered with an error").tag("namespace", namespace).register(registry);
    rereplicated = Counter.builder("vmd.gateway.pages.rereplicated")
        .description("page copies made because a server holding one went down").tag("namespace", namespace)
        .register(registry);
    Gauge.builder("vmd.gateway.pages.under.replicated", underReplicated, Number::doubleValue)
        .description("pages with fewer copies on live servers than the namespace's replica count")
        .tag("namespace", namespace).register(registry);
    for (int cmd = 0; cmd < latency.length; cmd++) {
      latency[cmd] = Timer.builder("vmd.gateway.request").description("time from an NBD request to its reply, by command").tag("namespace", namespace)
          .tag("op", NbdProtocol.commandName(cmd)).publishPercentileHistogram().register(registry);
    }
  }

  void read(long pages, long bytes) {
    pagesIn.increment(pages);
    bytesRead.increment(bytes);
  }

  void written(long pages, long bytes) {
    pagesOut.increment(pages);
    bytesWritten.increment(bytes);
  }

  void trimmed(long pages) {
    pagesTrimmed.increment(pages);
  }

  void error() {
    errors.increment();
  }

  void latency(int cmd, long startNanos) {
    if (cmd >= 0 && cmd < latency.length) {
      latency[cmd].record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
    }
  }

  /** The repairer's count of pages short of copies at its last scan. */
  @Override
  public void underReplicated(long pages) {
    underReplicated.set(pages);
  }

  /** Page copies the repairer made. */
  @Override
  public void rereplicated(long copies) {
    rereplicated.increment(copies);
  }

  /** Page copies made to replace copies on down servers. */
  public double rereplicated() {
    return rereplicated.count();
  }

  /** Pages short of copies on live servers at the last scan. */
  public long underReplicated() {
    return underReplicated.get();
  }

  /** Requests answered with an error. */
  public double errors() {
    return errors.count();
  }

  public double pagesIn() {
    return pagesIn.count();
  }

  /** Pages written since start: the page-out side of the swap rate. */
  public double pagesOut() {
    return pagesOut.count();
  }
}
