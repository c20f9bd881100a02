package io.vmd.bench.fault;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.MiniVmdCluster;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The page-fault latency harness behind {@code vmd bench fault}: the same workloads against VMD through
 * the NBD gateway (the path a swapping kernel takes), VMD through VmdClient directly, nbdkit's memory
 * plugin and Redis, all started here on 127.0.0.1, in one run; a side-by-side table with ratios.
 */
public final class FaultBench {

  /**
   * @param targets which targets, in order: vmd-nbd, vmd-direct, nbdkit, redis
   * @param workloads which workloads by key (page-in, page-out, mixed, seq-read, seq-write); empty: all
   * @param seconds per workload and target
   * @param regionBytes bytes each target holds and the workloads address
   */
  public record Options(List<String> targets, List<String> workloads, double seconds, long regionBytes, Path json, Path csv, Path plot,
      boolean jsonToStdout) {}

  /** One measured cell: a target under a workload. */
  public record Row(String target, String workload, double p50, double p90, double p99, double p999,
      double iops, double mbPerSecond, long gcMaxPauseMillis, int gcPauses, double cpuMicrosPerOp,
      double kernelShare) {}

  private final Options options;
  private final PrintStream out;
  private final PrintStream progress;
  private final Map<String, Map<String, Result>> results = new LinkedHashMap<>();
  private final List<Row> rows = new ArrayList<>();

  private final List<Workload> workloads;

  public FaultBench(Options options, PrintStream out, PrintStream progress) {
    this.options = options;
    this.workloads = Workload.select(options.workloads());
    this.out = out;
    this.progress = progress;
  }

  public List<Row> run() throws Exception {
    long nanos = (long) (options.seconds() * 1e9);
    for (String name : options.targets()) {
      try (Target t = open(name)) {
        try (Driver d = t.driver()) {
          progress.printf("[%s] filling %d MiB%n", name, options.regionBytes() >> 20);
          d.fill(options.regionBytes());
          for (Workload w : workloads) {
            progress.printf("[%s] %s for %.0f s ...%n", name, w.name(), options.seconds());
            Result r;
            GcWatch gc = new GcWatch();
            CpuWatch cpu = new CpuWatch();
            CpuWatch.Usage used;
            try {
              r = d.run(w, options.regionBytes(), nanos);
            } finally {
              used = cpu.stop();
              gc.close();
            }
            double cpuPerOp = used == null ? -1 : used.busyMicros() / Math.max(1, r.operations);
            double kernel = used == null || used.busyMicros() == 0 ? -1 : used.systemMicros() / used.busyMicros();
            results.computeIfAbsent(name, k -> new LinkedHashMap<>()).put(w.name(), r);
            rows.add(new Row(name, w.name(), r.micros(50), r.micros(90), r.micros(99), r.micros(99.9), r.iops(),
                r.megabytesPerSecond(), gc.maxPauseMillis(), gc.pauses(), cpuPerOp, kernel));
          }
        }
      }
    }
    if (options.jsonToStdout()) {
      out.print(json());
      out.flush();
    } else {
      printTable();
    }
    writeFiles();
    return rows;
  }

  private Target open(String name) throws Exception {
    switch (name) {
      case "vmd-nbd":
        return VmdStack.start(options.regionBytes(), true);
      case "vmd-direct":
        return VmdStack.start(options.regionBytes(), false);
      case "nbdkit": {
        ExternalProcess p = ExternalProcess.start(List.of("nbdkit", "-f", "-i", "127.0.0.1", "-p", "%PORT%",
            "memory", String.valueOf(options.regionBytes())));
        return new Target() {
          public String name() {
            return "nbdkit";
          }

          public Driver driver() throws Exception {
            return new NbdLoadClient("127.0.0.1", p.port, "");
          }

          public void close() throws Exception {
            p.close();
          }
        };
      }
      case "redis": {
        ExternalProcess p = ExternalProcess.start(List.of("redis-server", "--port", "%PORT%", "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "no"));
        return new Target() {
          public String name() {
            return "redis";
          }

          public Driver driver() throws Exception {
            return new RedisDriver("127.0.0.1", p.port);
          }

          public void close() throws Exception {
            p.close();
          }
        };
      }
      default:
        throw new IllegalArgumentException("unknown target '" + name + "' (vmd-nbd, vmd-direct, nbdkit, redis)");
    }
  }

  /** Two servers, a client and (for vmd-nbd) a gateway, in this JVM on loopback ports. */
  static final class VmdStack implements Target {
    private final MiniVmdCluster cluster;
    private final VmdClient client;
    private final NbdGateway gateway;
    private final Namespace direct;

    private VmdStack(MiniVmdCluster cluster, VmdClient client, NbdGateway gateway, Namespace direct) {
      this.cluster = cluster;
      this.client = client;
      this.gateway = gateway;
      this.direct = direct;
    }

    static VmdStack start(long region, boolean viaNbd) throws Exception {
      MiniVmdCluster cluster = MiniVmdCluster.builder().servers(2, region).start();
      VmdClient client = null;
      try {
        client = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()).withIoThreads(Runtime.getRuntime().availableProcessors()));
        client.createNamespace("bench", region, 1);
        if (viaNbd) {
          NbdGateway gw = NbdGateway.start(new GatewayConfig(new HostPort("127.0.0.1", 0), "bench"), client,
              new SimpleMeterRegistry());
          return new VmdStack(cluster, client, gw, null);
        }
        return new VmdStack(cluster, client, null, client.attach("bench", true));
      } catch (Exception e) {
        if (client != null) {
          client.close();
        }
        cluster.close();
        throw e;
      }
    }

    public String name() {
      return gateway != null ? "vmd-nbd" : "vmd-direct";
    }

    public Driver driver() throws Exception {
      return gateway != null
          ? new NbdLoadClient("127.0.0.1", gateway.address().port(), "bench")
          : new DirectDriver(direct);
    }

    public void close() {
      if (gateway != null) {
        gateway.close();
      }
      client.close();
      cluster.close();
    }
  }

  private Result result(String target, String workload) {
    Map<String, Result> m = results.get(target);
    return m == null ? null : m.get(workload);
  }

  private Row row(String target, String workload) {
    for (Row r : rows) {
      if (r.target().equals(target) && r.workload().equals(workload)) {
        return r;
      }
    }
    throw new IllegalStateException("no row for " + target + " / " + workload);
  }

  private void printTable() {
    out.printf(Locale.ROOT, "%nvmd bench fault: %.0f s per workload, %d MiB region, %d cores, Java %s%n",
        options.seconds(), options.regionBytes() >> 20, Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.version"));
    for (Workload w : workloads) {
      out.printf(Locale.ROOT, "%n%-30s %9s %9s %9s %9s %10s %9s %8s %11s %7s%n", w.name(), "p50 µs", "p90 µs",
          "p99 µs", "p99.9 µs", "IOPS", "MB/s", "GC max", "CPU µs/op", "kernel");
      for (Row r : rows) {
        if (r.workload().equals(w.name())) {
          out.printf(Locale.ROOT, "  %-28s %9.1f %9.1f %9.1f %9.1f %10.0f %9.1f %6d ms %11.1f %6.0f%%%n", r.target(),
              r.p50(), r.p90(), r.p99(), r.p999(), r.iops(), r.mbPerSecond(), r.gcMaxPauseMillis(),
              r.cpuMicrosPerOp(), r.kernelShare() * 100);
        }
      }
      ratio(w, "vmd-nbd", "nbdkit");
      ratio(w, "vmd-direct", "redis");
    }
    out.flush();
  }

  private void ratio(Workload w, String a, String b) {
    Result ra = result(a, w.name());
    Result rb = result(b, w.name());
    if (ra != null && rb != null) {
      Row ca = row(a, w.name());
      Row cb = row(b, w.name());
      out.printf(Locale.ROOT, "  %-28s %9.2f %9.2f %9.2f %9.2f %10.2f %9.2f %8s %11.2f%n", a + " / " + b,
          ra.micros(50) / rb.micros(50), ra.micros(90) / rb.micros(90), ra.micros(99) / rb.micros(99),
          ra.micros(99.9) / rb.micros(99.9), ra.iops() / rb.iops(), ra.megabytesPerSecond() / rb.megabytesPerSecond(),
          "", ca.cpuMicrosPerOp() / cb.cpuMicrosPerOp());
    }
  }

  private String json() {
    StringBuilder sb = new StringBuilder("[\n");
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      sb.append(String.format(Locale.ROOT,
          "  {\"target\":\"%s\",\"workload\":\"%s\",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
              + "\"p999_us\":%.1f,\"iops\":%.0f,\"mb_per_s\":%.1f,\"gc_max_pause_ms\":%d,\"gc_pauses\":%d,\"cpu_us_per_op\":%.1f,\"kernel_share\":%.3f}%s%n",
          r.target(), r.workload(), r.p50(), r.p90(), r.p99(), r.p999(), r.iops(), r.mbPerSecond(),
          r.gcMaxPauseMillis(), r.gcPauses(), r.cpuMicrosPerOp(), r.kernelShare(), i < rows.size() - 1 ? "," : ""));
    }
    return sb.append("]\n").toString();
  }

  private void writeFiles() throws Exception {
    if (options.json() != null) {
      Files.writeString(options.json(), json());
      progress.println("wrote " + options.json());
    }
    if (options.csv() != null) {
      StringBuilder sb = new StringBuilder(
          "target,workload,p50_us,p90_us,p99_us,p999_us,iops,mb_per_s,gc_max_pause_ms,cpu_us_per_op,kernel_share\n");
      for (Row r : rows) {
        sb.append(String.format(Locale.ROOT, "%s,%s,%.1f,%.1f,%.1f,%.1f,%.0f,%.1f,%d,%.1f,%.3f%n", r.target(),
            r.workload(), r.p50(), r.p90(), r.p99(), r.p999(), r.iops(), r.mbPerSecond(), r.gcMaxPauseMillis(),
            r.cpuMicrosPerOp(), r.kernelShare()));
      }
      Files.writeString(options.csv(), sb);
      progress.println("wrote " + options.csv());
    }
    if (options.plot() != null) {
      List<CdfPlot.Panel> panels = new ArrayList<>();
      for (Workload w : workloads) {
        if (w.queueDepth() != 1) {
          continue;
        }
        List<CdfPlot.Series> series = new ArrayList<>();
        for (String t : options.targets()) {
          Result r = result(t, w.name());
          if (r != null) {
            series.add(new CdfPlot.Series(t, r.latencyNanos));
          }
        }
        panels.add(new CdfPlot.Panel(w.name() + ": latency CDF", series));
      }
      Files.writeString(options.plot(), CdfPlot.svg(panels));
      progress.println("wrote " + options.plot());
    }
  }
}
