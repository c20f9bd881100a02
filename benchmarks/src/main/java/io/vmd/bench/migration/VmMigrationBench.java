package io.vmd.bench.migration;

import io.vmd.bench.plot.LinePlot;
import io.vmd.bench.report.BenchFiles;
import io.vmd.common.HostPort;
import io.vmd.common.Sizes;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.qemu.QemuMigration;
import io.vmd.migration.qemu.QemuVm;
import io.vmd.migration.qemu.QmpException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code vmd bench vm-migration}: the Agile paper's comparison with real QEMU guests. Each run boots a
 * fresh guest whose swap disk is a namespace (through the source host's gateway), lets it run a
 * working-set workload (a hot set rewritten all the time, cold pages read now and then), migrates it
 * over a capped link into a QEMU waiting on the destination host's gateway, lets it run on, and has it
 * check every page; the namespace changes hands at switch-over. The runs: the baselines as the VM runs
 * without VMD (no balloon, everything resident) with pre-copy and post-copy; Agile (the reservation cut
 * by the balloon, cold pages in the namespace, one pre-copy pass then post-copy); and the ablations
 * (pre-copy and post-copy with the same balloon, the hybrid without it).
 */
public final class VmMigrationBench {
  /**
   * One run: a policy, with or without the balloon cutting the reservation to the working set, and
   * whether a pre-copy phase runs even where QEMU would lose guest writes in it (TcgDirtyTracking: the
   * run is then measured and its corruption reported). {@code agile} is what {@code vmd migrate --policy
   * agile} does; {@code hybrid+balloon} forces the pre-copy pass. With guest RAM sized around QEMU 7.2's
   * bug, as QemuVm does, the two are the same migration.
   */
  public record Run(String label, QemuMigration.Policy policy, boolean ballooned, boolean forcePreCopy) {
    public static Run parse(String s) {
      String t = s.trim().toLowerCase(Locale.ROOT);
      return switch (t) {
        case "pre-copy" -> new Run(t, QemuMigration.Policy.PRE_COPY, false, true);
        case "post-copy" -> new Run(t, QemuMigration.Policy.POST_COPY, false, false);
        case "agile" -> new Run(t, QemuMigration.Policy.AGILE, true, false);
        case "hybrid+balloon" -> new Run(t, QemuMigration.Policy.AGILE, true, true);
        case "pre-copy+balloon" -> new Run(t, QemuMigration.Policy.PRE_COPY, true, true);
        case "post-copy+balloon" -> new Run(t, QemuMigration.Policy.POST_COPY, true, false);
        case "hybrid-no-balloon" -> new Run(t, QemuMigration.Policy.AGILE, false, true);
        default -> throw new IllegalArgumentException("unknown run '" + s + "': pre-copy, post-copy, agile, "
            + "hybrid+balloon, pre-copy+balloon, post-copy+balloon, hybrid-no-balloon");
      };
    }
  }

  /**
   * @param memoryBytes each guest's RAM
   * @param workloadMib memory its workload uses; {@code hotMib} of it is the hot set
   * @param reservationBytes what the balloon leaves the guest in ballooned runs
   * @param opsPerSecond the workload's pace (an operation checks and rewrites one hot page, or checks
   *     a cold one); 0: as fast as the guest runs
   * @param beforeSeconds the workload's run before the migration starts; {@code windowSeconds} the time
   *     given to the migration; {@code afterSeconds} the run after that, then every page is checked
   * @param emulatedHosts every role on emulated hosts whose links the kernel caps at the bandwidth
   *     ({@link EmulatedLabHosts}), instead of one JVM and QEMU's max-bandwidth on loopback
   * @param launcher how to run a {@code vmd} process (java, its options, -cp, the main class), for
   *     emulated hosts
   */
  public record Options(Path vmlab, long memoryBytes, int workloadMib, int hotMib, long reservationBytes,
      double bytesPerSecond, long opsPerSecond, int beforeSeconds, int windowSeconds, int afterSeconds, String accel,
      List<Run> runs, Path plot, Path json, Path workDir, boolean emulatedHosts, List<String> launcher) {}

  /** What one run measured. */
  public record Outcome(Run run, QemuMigration.Result qemu, boolean verified, String verdict, double beforeOpsPerSecond,
      double duringOpsPerSecond, double afterOpsPerSecond, double recoverySeconds, long pageInsRunning,
      long pageInsAtDestination, long pageOutsAtSource, double[] times, double[] rates, double migrationSeconds) {}

  private static final Pattern PROGRESS = Pattern.compile("VMLAB: t=(\\d+) ops=(\\d+)");
  private static final long MIB = 1 << 20;

  private final Options o;
  private final PrintStream out;
  private final PrintStream progress;

  public VmMigrationBench(Options options, PrintStream out, PrintStream progress) {
    this.o = options;
    this.out = out;
    this.progress = progress;
  }

  public Map<Run, Outcome> run() throws Exception {
    Map<Run, Outcome> results = new LinkedHashMap<>();
    Files.createDirectories(o.workDir());
    long serverBytes = o.memoryBytes() * 2;
    try (GuestHosts hosts = o.emulatedHosts()
        ? EmulatedLabHosts.start(o.launcher(), o.bytesPerSecond(), serverBytes, o.workDir())
        : LoopbackHosts.start(serverBytes)) {
      progress.println(hosts.describe());
      runAll(results, hosts);
    }
    print(results);
    if (o.plot() != null) {
      Files.writeString(o.plot(), plot(results));
      progress.println("wrote " + o.plot());
    }
    if (o.json() != null) {
      Files.writeString(o.json(), json(results));
      progress.println("wrote " + o.json());
    }
    return results;
  }

  private void runAll(Map<Run, Outcome> results, GuestHosts hosts) throws Exception {
    int i = 0;
    for (Run run : o.runs()) {
      String ns = "bench-vm" + i++;
      hosts.orchestrator().namespaces().create(ns, o.memoryBytes(), 1);
      progress.printf(Locale.ROOT, "[%s] guest of %s, %d MiB in use (%d MiB hot)%s, %s ...%n", run.label(),
          Sizes.format(o.memoryBytes()), o.workloadMib(), o.hotMib(),
          run.ballooned() ? ", ballooned to " + Sizes.format(o.reservationBytes()) : ", everything resident",
          run.policy().label());
      Outcome r = runOne(run, ns, hosts);
      results.put(run, r);
      progress.printf(Locale.ROOT, "[%s] %.2f s, %s moved, %s%n", run.label(), r.qemu().totalMillis() / 1000.0,
          Sizes.format(r.qemu().transferredBytes()), r.verdict());
      hosts.orchestrator().namespaces().delete(ns, true);
    }
  }

  private Outcome runOne(Run run, String ns, GuestHosts hosts) throws Exception {
    // The guest cannot be told when the migration is over: its workload runs for a fixed time, the
    // migration inside it, and then checks every page (at the destination).
    int secs = o.beforeSeconds() + o.windowSeconds() + o.afterSeconds();
    StringBuilder append = new StringBuilder("console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.work=hotset")
        .append(" vmlab.mb=").append(o.workloadMib()).append(" vmlab.hot=").append(o.hotMib())
        .append(" vmlab.secs=").append(secs).append(" vmlab.rate=").append(o.opsPerSecond());
    if (run.ballooned()) {
      // The guest waits for its balloon before it starts: the reservation is in force from the first page.
      append.append(" vmlab.avail=").append((o.reservationBytes() - 48 * MIB) / 1024);
    }
    Path lab = o.vmlab();
    QemuVm.Spec src = new QemuVm.Spec("src", o.memoryBytes(), ns, hosts.gateway(GuestHosts.SOURCE), lab.resolve("vmlinuz"),
        lab.resolve("initrd.gz"), append.toString(), o.accel(), false);
    QemuVm.Spec dst = new QemuVm.Spec("dst", o.memoryBytes(), ns, hosts.gateway(GuestHosts.DESTINATION), lab.resolve("vmlinuz"),
        lab.resolve("initrd.gz"), append.toString(), o.accel(), true);
    Path dir = o.workDir().resolve(run.label());
    List<double[]> samples = new ArrayList<>(); // host seconds, cumulative ops
    try (QemuVm source = QemuVm.start(src, dir.resolve("src"), hosts.command(GuestHosts.SOURCE))) {
      source.awaitSerial("VMLAB: swap on", Duration.ofSeconds(120));
      if (run.ballooned()) {
        source.balloon(o.reservationBytes());
      }
      source.awaitSerial("VMLAB: hotset running", Duration.ofSeconds(600));
      long t0 = System.nanoTime();
      Tail srcTail = new Tail(source.serialLog());
      long until = t0 + o.beforeSeconds() * 1_000_000_000L;
      while (System.nanoTime() < until) {
        srcTail.poll(samples, t0);
        Thread.sleep(100);
      }
      try (QemuVm dest = QemuVm.start(dst, dir.resolve("dst"), hosts.command(GuestHosts.DESTINATION))) {
        long outsBefore = hosts.pagesOut(GuestHosts.SOURCE, ns);
        HostPort incoming = hosts.incoming();
        // The kernel caps emulated links; QEMU's own cap then only keeps it from bursting past 4x.
        long qemuCap = (long) (o.emulatedHosts() ? o.bytesPerSecond() * 4 : o.bytesPerSecond());
        double migStart = (System.nanoTime() - t0) / 1e9;
        // The migration runs on this thread; the source's progress lines are read in between polls.
        QemuMigration.Result r;
        try {
          r = QemuMigration.newBuilder(source.qmp(), dest.qmp()).policy(run.policy()).to(incoming.host(), incoming.port())
              .bandwidth(qemuCap).timeout(Duration.ofSeconds(o.windowSeconds()))
              .switchOver(() -> hosts.orchestrator().namespaces().fence(ns)).allowTcgPreCopy(run.forcePreCopy()).progress(m -> {
                try {
                  srcTail.poll(samples, t0);
                } catch (IOException e) {
                  // the next poll tries again
                }
              }).run();
        } catch (QmpException e) {
          // Pre-copy of a busy hot set may not converge in the window: a result, not a crash.
          progress.printf(Locale.ROOT, "[%s] %s%n", run.label(), e.getMessage());
          QemuMigration.Result none = new QemuMigration.Result(run.policy(), "cancelled", o.windowSeconds() * 1000L,
              -1, 0, 0, 0, 0, 0, 0, 0, -1, -1, false, -1);
          double end = (System.nanoTime() - t0) / 1e9;
          return outcome(run, none, false, "migration did not finish: " + e.getMessage(), samples, migStart, end, 0, 0,
              0);
        }
        double migEnd = (System.nanoTime() - t0) / 1e9;
        srcTail.poll(samples, t0);
        long pageOuts = hosts.pagesOut(GuestHosts.SOURCE, ns) - outsBefore;
        Tail dstTail = new Tail(dest.serialLog());
        List<double[]> destSamples = new ArrayList<>();
        long deadline = System.nanoTime() + (secs + 300L) * 1_000_000_000L;
        // Page-ins while the guest runs its workload, apart from its final check of every page.
        long runningPageIns = 0;
        boolean ended = false;
        while (!ended && dest.alive() && System.nanoTime() < deadline) {
          int had = destSamples.size();
          ended = dstTail.poll(destSamples, t0).contains("VMLAB: hotset ");
          if (destSamples.size() > had) {
            runningPageIns = hosts.pagesIn(GuestHosts.DESTINATION, ns);
          }
          if (!ended) {
            Thread.sleep(100);
          }
        }
        dstTail.poll(destSamples, t0);
        long pageIns = hosts.pagesIn(GuestHosts.DESTINATION, ns);
        String serial = dest.serial();
        boolean verified = serial.contains("VMLAB: hotset OK") && !badKernel(serial) && !badKernel(source.serial());
        Matcher m = Pattern.compile("VMLAB: hotset (OK|FAILED)[^\\n]*").matcher(serial);
        String verdict = m.find() ? m.group().replace("VMLAB: ", "") : "no verdict (the destination did not finish)";
        String bad = firstBad(serial);
        if (bad != null) {
          verdict += "; destination kernel: " + bad;
        }
        samples.addAll(destSamples);
        return outcome(run, r, verified, verdict, samples, migStart, migEnd, runningPageIns, pageIns, pageOuts);
      }
    }
  }

  private static boolean badKernel(String serial) {
    return firstBad(serial) != null;
  }

  private static String firstBad(String serial) {
    for (String s : new String[] {"Kernel panic", "Oops", "BUG:", "general protection fault"}) {
      if (serial.contains(s)) {
        return s;
      }
    }
    return null;
  }

  /** New lines of a serial log, read from where the last poll stopped; progress lines stamped with the host time. */
  private static final class Tail {
    private final Path file;
    private long offset;

    Tail(Path file) {
      this.file = file;
    }

    /** Adds the progress lines that came since the last poll to {@code into}; returns the new whole lines. */
    String poll(List<double[]> into, long t0) throws IOException {
      if (!Files.exists(file)) {
        return "";
      }
      String s;
      try (FileChannel ch = FileChannel.open(file)) {
        long size = ch.size();
        if (size <= offset) {
          return "";
        }
        ByteBuffer b = ByteBuffer.allocate((int) (size - offset));
        while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
          // until the bytes there when it was sized
        }
        s = new String(b.array(), 0, b.position(), StandardCharsets.ISO_8859_1);
      }
      int lastNl = s.lastIndexOf('\n');
      if (lastNl < 0) {
        return "";
      }
      offset += lastNl + 1;
      String lines = s.substring(0, lastNl);
      double now = (System.nanoTime() - t0) / 1e9;
      Matcher m = PROGRESS.matcher(lines);
      while (m.find()) {
        into.add(new double[] {now, Double.parseDouble(m.group(2))});
      }
      return lines;
    }
  }

  private Outcome outcome(Run run, QemuMigration.Result r, boolean verified, String verdict, List<double[]> s,
      double migStart, double migEnd, long runningPageIns, long pageIns, long pageOuts) {
    // Rates between consecutive progress lines, at the later line's time. The destination's counter
    // continues the source's (the guest's memory moved), so one series spans the migration.
    List<double[]> rates = new ArrayList<>();
    for (int i = 1; i < s.size(); i++) {
      double dt = s.get(i)[0] - s.get(i - 1)[0];
      double dops = s.get(i)[1] - s.get(i - 1)[1];
      if (dt > 0.05 && dops >= 0) {
        rates.add(new double[] {s.get(i)[0], dops / dt});
      }
    }
    double before = rate(s, migStart - o.beforeSeconds() / 2.0, migStart);
    double during = spanRate(s, migStart, migEnd);
    double after = rate(s, migEnd, Double.MAX_VALUE);
    double recovery = Double.NaN;
    for (double[] x : rates) {
      if (x[0] > migEnd && x[1] >= 0.9 * before) {
        recovery = x[0] - migEnd;
        break;
      }
    }
    double[] times = new double[rates.size()];
    double[] ys = new double[rates.size()];
    for (int i = 0; i < rates.size(); i++) {
      times[i] = rates.get(i)[0] - migStart;
      ys[i] = rates.get(i)[1];
    }
    return new Outcome(run, r, verified, verdict, before, during, after, recovery, runningPageIns, pageIns, pageOuts,
        times, ys, migEnd - migStart);
  }

  /**
   * Operations per second from the last sample at or before {@code from} to the first at or after
   * {@code to}: a migration is often shorter than the guest's one-second reports.
   */
  private static double spanRate(List<double[]> s, double from, double to) {
    double[] first = null;
    double[] last = null;
    for (double[] x : s) {
      if (x[0] <= from) {
        first = x;
      }
      if (x[0] >= to && last == null) {
        last = x;
      }
    }
    if (first == null || last == null || last[0] <= first[0]) {
      return Double.NaN;
    }
    return (last[1] - first[1]) / (last[0] - first[0]);
  }

  /** Operations per second over [from, to], from the samples nearest inside it. */
  private static double rate(List<double[]> s, double from, double to) {
    double[] first = null;
    double[] last = null;
    for (double[] x : s) {
      if (x[0] >= from && x[0] <= to) {
        if (first == null) {
          first = x;
        }
        last = x;
      }
    }
    if (first == null || last == first || last[0] <= first[0]) {
      return Double.NaN;
    }
    return (last[1] - first[1]) / (last[0] - first[0]);
  }

  private void print(Map<Run, Outcome> r) {
    out.printf(Locale.ROOT, "%nvmd bench vm-migration: QEMU guests of %s (%s), a %d MiB workload with a %d MiB hot set,"
        + " %s link%s; ballooned runs keep %s resident, the rest swaps to the VMD%n", Sizes.format(o.memoryBytes()),
        o.accel(), o.workloadMib(), o.hotMib(), Bandwidth.format(o.bytesPerSecond()),
        o.emulatedHosts() ? " (four emulated hosts, capped by the kernel)" : " (loopback, QEMU's max-bandwidth)",
        Sizes.format(o.reservationBytes()));
    row("", r, x -> "");
    out.println("\nTable I: the migrated guest's throughput (operations/s)");
    row("before", r, x -> f0(x.beforeOpsPerSecond()));
    row("around the migration", r, x -> f0(x.duringOpsPerSecond()));
    row("after", r, x -> f0(x.afterOpsPerSecond()));
    row("back to 90 % after", r, x -> Double.isNaN(x.recoverySeconds()) ? "-" : String.format(Locale.ROOT, "%.1f s",
        x.recoverySeconds()));
    out.println("\nTable II: migration time");
    row("total (s)", r, x -> String.format(Locale.ROOT, "%.2f", x.qemu().totalMillis() / 1000.0));
    row("downtime (ms)", r, x -> String.valueOf(x.qemu().downtimeMillis()));
    row("  as the guest saw it", r, x -> String.valueOf(x.qemu().guestDowntimeMillis()));
    row("swap hand-over (ms)", r, x -> String.valueOf(x.qemu().switchoverMillis()));
    row("post-copy after (s)", r, x -> x.qemu().postcopyAfterMillis() < 0 ? "-"
        : String.format(Locale.ROOT, "%.2f", x.qemu().postcopyAfterMillis() / 1000.0)
        + (x.qemu().precopyPassSkipped() ? " (TCG)" : ""));
    row("dirty-bitmap syncs", r, x -> String.valueOf(x.qemu().dirtySyncCount()));
    out.println("\nTable III: data (MB)");
    row("transferred", r, x -> mb(x.qemu().transferredBytes()));
    row("  pre-copy", r, x -> mb(x.qemu().precopyBytes()));
    row("  post-copy", r, x -> mb(x.qemu().postcopyBytes()));
    row("  during downtime", r, x -> mb(x.qemu().downtimeBytes()));
    row("zero pages", r, x -> String.valueOf(x.qemu().zeroPages()));
    row("post-copy requests", r, x -> String.valueOf(x.qemu().postcopyRequests()));
    row("VMD page-ins at dest", r, x -> String.valueOf(x.pageInsRunning()));
    row("  with the final check", r, x -> String.valueOf(x.pageInsAtDestination()));
    row("source page-outs, mig.", r, x -> String.valueOf(x.pageOutsAtSource()));
    out.println("\nVerification (every page checked in the guest at the destination)");
    row("memory", r, x -> x.verified() ? "verified" : "CORRUPTED");
    for (Outcome x : r.values()) {
      out.printf(Locale.ROOT, "  %-22s %s%n", x.run().label(), x.verdict());
    }
    Outcome agile = find(r, "agile");
    for (String base : new String[] {"pre-copy", "post-copy"}) {
      Outcome b = find(r, base);
      if (agile != null && b != null) {
        out.printf(Locale.ROOT, "agile / %s (without VMD): time %.2f, data %.2f%n", base,
            (double) agile.qemu().totalMillis() / b.qemu().totalMillis(),
            (double) agile.qemu().transferredBytes() / b.qemu().transferredBytes());
      }
    }
    out.flush();
  }

  private static Outcome find(Map<Run, Outcome> r, String label) {
    for (Map.Entry<Run, Outcome> e : r.entrySet()) {
      if (e.getKey().label().equals(label)) {
        return e.getValue();
      }
    }
    return null;
  }

  private void row(String label, Map<Run, Outcome> r, Function<Outcome, String> cell) {
    StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  %-24s", label));
    for (Map.Entry<Run, Outcome> e : r.entrySet()) {
      sb.append(String.format(Locale.ROOT, "%19s", label.isEmpty() ? e.getKey().label() : cell.apply(e.getValue())));
    }
    out.println(sb);
  }

  private static String f0(double v) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.0f", v);
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f", bytes / 1e6);
  }

  private String plot(Map<Run, Outcome> r) {
    List<LinePlot.Series> series = new ArrayList<>();
    List<LinePlot.Mark> marks = new ArrayList<>();
    // From a few seconds before the migrations to a while after the longest: the runs differ there.
    double until = 15;
    for (Outcome x : r.values()) {
      until = Math.max(until, x.migrationSeconds() + 15);
    }
    for (Outcome x : r.values()) {
      List<double[]> kept = new ArrayList<>();
      for (int i = 0; i < x.times().length; i++) {
        if (x.times()[i] >= -5 && x.times()[i] <= until) {
          kept.add(new double[] {x.times()[i], x.rates()[i]});
        }
      }
      double[] xs = kept.stream().mapToDouble(p -> p[0]).toArray();
      double[] ys = kept.stream().mapToDouble(p -> p[1]).toArray();
      series.add(new LinePlot.Series(x.run().label(), xs, ys, false));
      marks.add(new LinePlot.Mark(x.run().label() + " done", x.migrationSeconds()));
    }
    marks.add(new LinePlot.Mark("migration starts", 0));
    return LinePlot.svg(List.of(new LinePlot.Panel("Migrated QEMU guest's throughput per run (" + o.accel() + ")",
        "seconds since the migration started", "operations per second", series, marks)));
  }

  /** A run in --json-file; times in ms, bytes, operations per second (0 where not measured). */
  record RunOut(String run, String policy, boolean ballooned, boolean verified, long totalMs, long downtimeMs,
      long guestDowntimeMs, long switchoverMs, long transferred, long precopy, long postcopy, long downtimeBytes,
      long zeroPages, long postcopyRequests, long pageInsDest, long pageInsDestWithCheck, double opsBefore,
      double opsDuring, double opsAfter) {}

  private String json(Map<Run, Outcome> r) {
    List<RunOut> rows = new ArrayList<>();
    for (Outcome x : r.values()) {
      QemuMigration.Result q = x.qemu();
      rows.add(new RunOut(x.run().label(), q.policy().label(), x.run().ballooned(), x.verified(), q.totalMillis(),
          q.downtimeMillis(), q.guestDowntimeMillis(), q.switchoverMillis(), q.transferredBytes(), q.precopyBytes(),
          q.postcopyBytes(), q.downtimeBytes(), q.zeroPages(), q.postcopyRequests(), x.pageInsRunning(),
          x.pageInsAtDestination(), BenchFiles.round(nan0(x.beforeOpsPerSecond()), 1),
          BenchFiles.round(nan0(x.duringOpsPerSecond()), 1), BenchFiles.round(nan0(x.afterOpsPerSecond()), 1)));
    }
    return BenchFiles.json("runs", rows);
  }

  private static double nan0(double v) {
    return Double.isNaN(v) ? 0 : v;
  }
}
