package io.vmd.bench.migration;

import static io.vmd.bench.report.BenchFiles.round;

import io.vmd.bench.plot.LinePlot;
import io.vmd.bench.report.BenchFiles;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.Sizes;
import io.vmd.migration.engine.MigrationOptions;
import io.vmd.migration.experiment.MigrationExperiment;
import io.vmd.migration.experiment.MigrationExperiment.Outcome;
import io.vmd.migration.guest.DirtyRateWorkload;
import io.vmd.migration.guest.KeyValueWorkload;
import io.vmd.migration.guest.Workload;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.model.MigrationModel;
import io.vmd.migration.model.Policy;
import io.vmd.server.LocalCluster;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * {@code vmd bench migration}: the Agile paper's comparison, emulated. Several guests run on a source
 * host with part of their memory swapped to a VMD of three servers; one of them is migrated once per
 * policy over a paced link while all keep running; tables shaped like the paper's Tables I–III, the
 * migrated guest's throughput over time per policy, and (with {@code --model}) the migration-time
 * model against measurements over a grid of working sets and dirty rates (the second paper's Fig. 5–6).
 */
public final class MigrationBench {
  /**
   * @param workload {@code kv} (Redis/YCSB-shaped) or {@code dirty} (the second paper's test program)
   * @param opsPerSecond each guest's target rate (kv) or, for dirty, its dirty rate in pages per second
   */
  public record Options(int guests, long memoryBytes, double residentShare, double bytesPerSecond, String workload,
      List<Policy> policies, double warmUpSeconds, double afterSeconds, double opsPerSecond, double updateShare,
      long seed, Path json, Path plot, boolean model, Path modelPlot) {}

  private final Options o;
  private final PrintStream out;
  private final PrintStream progress;

  public MigrationBench(Options options, PrintStream out, PrintStream progress) {
    this.o = options;
    this.out = out;
    this.progress = progress;
  }

  public Map<Policy, Outcome> run() throws Exception {
    int pages = (int) (o.memoryBytes() / 4096);
    int resident = (int) Math.round(pages * o.residentShare());
    // Room for every guest's whole memory (a guest's swap namespace may come to hold all of it) and
    // the destination's own, a fifth spare; slab servers take memory only as pages arrive.
    long perServer = Math.max(64L << 20, o.memoryBytes() * (o.guests() + 1) * 6 / 5 / 3);
    Map<Policy, Outcome> results = new LinkedHashMap<>();
    try (LocalCluster cluster = LocalCluster.builder().servers(3, perServer).insecure().start();
        VmdClient source = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()));
        VmdClient destination = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()))) {
      int i = 0;
      for (Policy p : o.policies()) {
        progress.printf(Locale.ROOT, "[%s] %d guests of %s, migrating one over %s ...%n", p.label(), o.guests(),
            Sizes.format(o.memoryBytes()), Bandwidth.format(o.bytesPerSecond()));
        MigrationExperiment.Setup setup = new MigrationExperiment.Setup("bench" + i++, pages, resident,
            Duration.ofMillis((long) (o.warmUpSeconds() * 1000)), Duration.ofMillis((long) (o.afterSeconds() * 1000)),
            new MigrationOptions(p, o.bytesPerSecond(), Duration.ofMillis(300), 8, Duration.ofSeconds(60)),
            o.guests() - 1);
        Outcome r = MigrationExperiment.run(source, destination, setup, program(pages, resident));
        if (!r.badPages().isEmpty() || r.corruptReads() > 0) {
          throw new IllegalStateException(p.label() + ": " + r.badPages().size() + " pages differ at the destination, "
              + r.corruptReads() + " reads saw wrong bytes");
        }
        results.put(p, r);
        progress.printf(Locale.ROOT, "[%s] %.1f s, %s moved, every page byte-exact%n", p.label(),
            r.report().totalSeconds(), Sizes.format(r.report().totalBytes()));
      }
      print(results, pages, resident);
      if (o.plot() != null) {
        Files.writeString(o.plot(), throughputPlot(results));
        progress.println("wrote " + o.plot());
      }
      if (o.json() != null) {
        Files.writeString(o.json(), json(results));
        progress.println("wrote " + o.json());
      }
      if (o.model()) {
        new ModelValidation(source, destination, o, out, progress).run();
      }
    }
    return results;
  }

  private IntFunction<Workload> program(int pages, int resident) {
    long seed = o.seed();
    if (o.workload().equals("dirty")) {
      // The working set sits in the resident part, as a warm guest's does.
      int wss = Math.max(1, resident / 2);
      return n -> new DirtyRateWorkload(n, pages - resident, wss, o.opsPerSecond(), o.opsPerSecond(), seed);
    }
    return n -> new KeyValueWorkload(n, o.updateShare(), o.opsPerSecond(), seed);
  }

  private void print(Map<Policy, Outcome> r, int pages, int resident) {
    Outcome any = r.values().iterator().next();
    out.printf(Locale.ROOT, "%nvmd bench migration: %d guests × %s (%.0f %% resident, the rest in the VMD), %s, %s link%n",
        o.guests(), Sizes.format(o.memoryBytes()), 100.0 * resident / pages, any.workload(),
        Bandwidth.format(o.bytesPerSecond()));
    row("", r, x -> "", "%16s");
    out.println("\nTable I: application throughput during the migration (ops/s)");
    row("all guests (mean)", r, x -> String.format(Locale.ROOT, "%.0f", x.allGuestsDuringOpsPerSecond()), "%16s");
    row("migrated guest", r, x -> String.format(Locale.ROOT, "%.0f", x.duringOpsPerSecond()), "%16s");
    row("its baseline", r, x -> String.format(Locale.ROOT, "%.0f", x.baselineOpsPerSecond()), "%16s");
    row("back to 90 % after", r, x -> String.format(Locale.ROOT, "%.1f s", x.recoverySeconds()), "%16s");
    out.println("\nTable II: total migration time (s)");
    row("total", r, x -> String.format(Locale.ROOT, "%.2f", x.report().totalSeconds()), "%16s");
    row("downtime (ms)", r, x -> String.format(Locale.ROOT, "%.1f", x.report().downtimeSeconds() * 1000), "%16s");
    row("live rounds", r, x -> String.valueOf(x.report().rounds()), "%16s");
    out.println("\nTable III: data transferred (MB)");
    row("total", r, x -> mb(x.report().totalBytes()), "%16s");
    row("full pages, live", r, x -> mb(x.report().fullPageBytes()), "%16s");
    row("swap offsets", r, x -> mb(x.report().offsetBytes()), "%16s");
    row("pushed after resume", r, x -> mb(x.report().pushedBytes()), "%16s");
    row("sent on demand", r, x -> mb(x.report().demandBytes()), "%16s");
    out.println("\nFaults at the destination");
    row("from the source", r, x -> x.report().faultsFromSource() + "", "%16s");
    row("  p50 / p99 µs", r, x -> String.format(Locale.ROOT, "%.0f / %.0f", x.report().sourceFaultP50Micros(),
        x.report().sourceFaultP99Micros()), "%16s");
    row("from the VMD", r, x -> x.report().faultsFromVmd() + "", "%16s");
    row("  p50 / p99 µs", r, x -> String.format(Locale.ROOT, "%.0f / %.0f", x.report().vmdFaultP50Micros(),
        x.report().vmdFaultP99Micros()), "%16s");
    row("pages byte-exact", r, x -> x.badPages().isEmpty() ? "all " + pages : x.badPages().size() + " differ", "%16s");
    row("source fenced", r, x -> x.sourceFenced() == null ? "n/a" : x.sourceFenced() ? "yes" : "NO", "%16s");
    Outcome agile = r.get(Policy.AGILE);
    Outcome post = r.get(Policy.POST_COPY);
    Outcome pre = r.containsKey(Policy.XEN_PRE_COPY) ? r.get(Policy.XEN_PRE_COPY) : r.get(Policy.KVM_PRE_COPY);
    if (agile != null) {
      out.println();
      if (post != null) {
        out.printf(Locale.ROOT, "agile / post-copy: time %.2f (paper 0.44), data %.2f (paper 0.80)%n",
            agile.report().totalSeconds() / post.report().totalSeconds(),
            (double) agile.report().totalBytes() / post.report().totalBytes());
      }
      if (pre != null) {
        out.printf(Locale.ROOT, "agile / pre-copy:  time %.2f (paper 0.23), data %.2f (paper 0.54)%n",
            agile.report().totalSeconds() / pre.report().totalSeconds(),
            (double) agile.report().totalBytes() / pre.report().totalBytes());
      }
    }
    out.flush();
  }

  private void row(String label, Map<Policy, Outcome> r, Function<Outcome, String> cell,
      String fmt) {
    StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  %-22s", label));
    for (Map.Entry<Policy, Outcome> e : r.entrySet()) {
      sb.append(String.format(Locale.ROOT, fmt, label.isEmpty() ? e.getKey().label() : cell.apply(e.getValue())));
    }
    out.println(sb);
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f", bytes / 1e6);
  }

  private String throughputPlot(Map<Policy, Outcome> r) {
    List<LinePlot.Series> series = new ArrayList<>();
    List<LinePlot.Mark> marks = new ArrayList<>();
    for (Map.Entry<Policy, Outcome> e : r.entrySet()) {
      Outcome x = e.getValue();
      double[] t = x.throughput();
      int from = Math.max(0, x.migrationStartBucket() - (int) (o.warmUpSeconds() * 1000 / Workload.BUCKET_MILLIS / 2));
      // Long runs are averaged over k buckets per point (about 150 points), or the line is all noise.
      int k = Math.max(1, (t.length - from + 149) / 150);
      int n = (t.length - from) / k;
      double[] xs = new double[n];
      double[] ys = new double[n];
      for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < k; j++) {
          sum += t[from + i * k + j];
        }
        xs[i] = (from + i * k + k / 2.0 - x.migrationStartBucket()) * Workload.BUCKET_MILLIS / 1000.0;
        ys[i] = sum / k;
      }
      series.add(new LinePlot.Series(e.getKey().label(), xs, ys, false));
      marks.add(new LinePlot.Mark(e.getKey().label() + " done",
          (x.migrationEndBucket() - x.migrationStartBucket()) * Workload.BUCKET_MILLIS / 1000.0));
    }
    marks.add(new LinePlot.Mark("migration starts", 0));
    return LinePlot.svg(List.of(new LinePlot.Panel("Migrated guest's throughput per policy",
        "seconds since the migration started", "operations per second", series, marks)));
  }

  /** A run in --json-file; the units are in the names. */
  record RunOut(String policy, double totalS, double downtimeMs, int rounds, long bytes, long fullPageBytes,
      long offsetBytes, long pushedBytes, long demandBytes, long faultsFromSource, long faultsFromVmd,
      long allGuestsOpsPerS, long migratedOpsPerS, long baselineOpsPerS, double recoveryS, boolean byteExact) {}

  private String json(Map<Policy, Outcome> r) {
    List<RunOut> rows = new ArrayList<>();
    for (Map.Entry<Policy, Outcome> e : r.entrySet()) {
      Outcome x = e.getValue();
      var m = x.report();
      rows.add(new RunOut(e.getKey().label(), round(m.totalSeconds(), 3), round(m.downtimeSeconds() * 1000, 1),
          m.rounds(), m.totalBytes(), m.fullPageBytes(), m.offsetBytes(), m.pushedBytes(), m.demandBytes(),
          m.faultsFromSource(), m.faultsFromVmd(), Math.round(x.allGuestsDuringOpsPerSecond()),
          Math.round(x.duringOpsPerSecond()), Math.round(x.baselineOpsPerSecond()), round(x.recoverySeconds(), 1),
          x.badPages().isEmpty()));
    }
    return BenchFiles.json("runs", rows);
  }

  /** The model's estimate for a measured migration's inputs (link payload per page frame accounted). */
  static MigrationModel.Inputs inputs(long memory, long wss, double dirtyRate, double bytesPerSecond, long resident) {
    return new MigrationModel.Inputs(memory, wss, dirtyRate, bytesPerSecond * 4096 / 4106, resident, 0.3);
  }
}
