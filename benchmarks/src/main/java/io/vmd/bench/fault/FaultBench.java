package io.vmd.bench.fault;

import static io.vmd.bench.report.BenchFiles.round;

import io.vmd.bench.report.BenchFiles;
import io.vmd.client.VmdClient;
import io.vmd.common.RoleMetrics;
import io.vmd.load.Driver;
import io.vmd.load.Result;
import io.vmd.load.Workload;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;
import javax.management.ObjectName;
import org.HdrHistogram.Histogram;

/**
 * The page-fault latency harness behind {@code vmd bench fault}: the same workloads against VMD through
 * the NBD gateway (the path a swapping kernel takes), VMD through VmdClient directly, nbdkit's memory
 * plugin and Redis, all started here on 127.0.0.1, in one run; a side-by-side table with ratios.
 *
 * <p>VMD runs as deployed by default: its control plane, two servers and the gateway each a {@code vmd}
 * process of its own (the harness only drives load), so CPU per request, JIT time and pauses are read
 * per process. Every workload is measured warm (after each workload has run once) and cold (on freshly
 * started processes, right after the region is filled): a restarted gateway under a swapping VM lives
 * in the cold row. With a baseline build ({@link FaultBenchOptions#baseline}), {@code vmd-nbd@base}
 * runs right after {@code vmd-nbd}: an A/B of two builds in one run.
 */
public final class FaultBench {


  /**
   * CPU one process spent per request during a measurement, how much of it its JIT compiler took, and
   * the heap bytes it allocated per request (-1: not known, e.g. not a JVM).
   */
  public record ProcessUse(String process, double cpuMicrosPerOp, double jitMicrosPerOp, double heapBytesPerOp) {}

  /**
   * One measured cell: a target (with its replication factor) under a workload, in a phase, driven by
   * a client. {@code pauseMaxMicros} is the longest safepoint of every JVM involved ({@code pauseIn}:
   * which process, which operation); {@code cpuMicrosPerOp} is the whole machine's busy time per request.
   */
  public record Row(String target, int replicas, String phase, String client, String workload, double p50, double p90,
      double p99, double p999, double iops, double mbPerSecond, double pauseMaxMicros, String pauseIn, int pauses,
      double cpuMicrosPerOp, double kernelShare, List<ProcessUse> processes) {
    /** "warm vmd-nbd R=2 fio": how the table names it. */
    public String label() {
      return phase + " " + target + (target.startsWith("vmd") ? " R=" + replicas : "") + ("own".equals(client) ? "" : " " + client);
    }
  }

  private final FaultBenchOptions options;
  private final PrintStream out;
  /** The gateway target run from the baseline build (see {@link FaultBenchOptions#baseline}). */
  static final String BASELINE = "vmd-nbd@base";
  /** The gateway target with mutual TLS between the gateway (and harness) and the servers. */
  static final String TLS = "vmd-nbd-tls";
  /** fio's nbd engine through the gateway's Unix socket (nbd+unix), as a host's own QEMUs reach it. */
  static final String FIO_UNIX = "fio-unix";
  private final PrintStream progress;
  private final List<Row> rows = new ArrayList<>();
  /** Each row's latency distribution, where its client recorded one (fio reports percentiles only). */
  private final Map<Row, Histogram> histograms = new IdentityHashMap<>();
  private final List<Workload> workloads;
  private final SafepointLog harnessSafepoints;

  public FaultBench(FaultBenchOptions options, PrintStream out, PrintStream progress) {
    this.options = options;
    this.workloads = Workload.select(options.workloads());
    this.out = out;
    this.progress = progress;
    for (String p : options.phases()) {
      if (!p.equals("cold") && !p.equals("warm")) {
        throw new IllegalArgumentException("unknown phase '" + p + "' (cold, warm)");
      }
    }
    for (String c : options.clients()) {
      if (!c.equals("own") && !c.equals("fio") && !c.equals(FIO_UNIX)) {
        throw new IllegalArgumentException("unknown client '" + c + "' (own, fio, fio-unix)");
      }
    }
    for (int r : options.replicas()) {
      if (r < 1 || r > 2) {
        throw new IllegalArgumentException("replicas " + r + ": the harness runs two servers (1 or 2)");
      }
    }
    this.harnessSafepoints = logOwnSafepoints();
  }

  public List<Row> run() throws Exception {
    for (String phase : options.phases()) {
      if (phase.equals("cold") && options.inProcess()) {
        progress.println("[cold] skipped: with --in-process the harness's JVM is warm from the targets before");
        continue;
      }
      for (String client : options.clients()) {
        for (String name : targets()) {
          if (client.equals("fio") && !(name.startsWith("vmd-nbd") || name.startsWith("nbdkit") || name.equals("null-nbd"))) {
            progress.printf("[%s] not measured with fio: it speaks no NBD%n", name);
            continue;
          }
          if (client.equals(FIO_UNIX) && (!name.startsWith("vmd-nbd") || name.equals(BASELINE) || options.inProcess())) {
            progress.printf("[%s] not measured with %s: only a deployed VMD gateway serves a Unix socket here%n", name,
                FIO_UNIX);
            continue;
          }
          for (int replicas : name.startsWith("vmd") ? options.replicas() : List.of(1)) {
            if (phase.equals("warm")) {
              warm(name, replicas, client);
            } else {
              cold(name, replicas, client);
            }
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

  /**
   * The targets in the order they run: with a baseline build, {@code vmd-nbd@base} right after
   * {@code vmd-nbd}, so that the two builds meet the same machine within minutes of each other.
   */
  private List<String> targets() {
    List<String> out = new ArrayList<>();
    for (String t : options.targets()) {
      out.add(t);
      if (t.equals("vmd-nbd") && !options.baseline().isEmpty() && !options.targets().contains(BASELINE)) {
        out.add(BASELINE);
      }
    }
    return out;
  }

  /** One target started once and filled; each workload run once to warm up, then each measured. */
  private void warm(String name, int replicas, String client) throws Exception {
    String tag = tag("warm", name, replicas, client);
    try (Target t = open(name, replicas); Driver d = driver(t, client)) {
      progress.printf("%s filling %d MiB%n", tag, options.regionBytes() >> 20);
      d.fill(options.regionBytes());
      if (options.warmUpSeconds() > 0) {
        for (Workload w : workloads) {
          progress.printf("%s warming up: %s for %.0f s ...%n", tag, w.name(), options.warmUpSeconds());
          d.run(w, options.regionBytes(), (long) (options.warmUpSeconds() * 1e9));
        }
      }
      for (Workload w : workloads) {
        progress.printf("%s %s for %.0f s ...%n", tag, w.name(), options.seconds());
        rows.add(measure(t, d, name, replicas, "warm", client, w));
      }
    }
  }

  /** Per workload, freshly started processes: filled, then measured at once. */
  private void cold(String name, int replicas, String client) throws Exception {
    String tag = tag("cold", name, replicas, client);
    for (Workload w : workloads) {
      try (Target t = open(name, replicas); Driver d = driver(t, client)) {
        progress.printf("%s started; filling %d MiB, then %s for %.0f s ...%n", tag, options.regionBytes() >> 20, w.name(),
            options.seconds());
        d.fill(options.regionBytes());
        rows.add(measure(t, d, name, replicas, "cold", client, w));
      }
    }
  }

  /** "[cold vmd-nbd R=2 own]": how progress lines name what runs. */
  private static String tag(String phase, String name, int replicas, String client) {
    return "[" + phase + " " + name + (name.startsWith("vmd") ? " R=" + replicas : "") + " " + client + "]";
  }

  private Driver driver(Target t, String client) throws Exception {
    if (client.equals("fio")) {
      return new FioDriver(t.nbdUri());
    }
    if (client.equals(FIO_UNIX)) {
      return new FioDriver(t.nbdUnixUri());
    }
    return t.driver();
  }

  private Row measure(Target t, Driver d, String name, int replicas, String phase, String client, Workload w)
      throws Exception {
    List<Target.Watched> watched = new ArrayList<>(t.processes());
    // The harness drives its own client (and with --in-process, is VMD): it is one of the processes.
    if (client.equals("own") || options.inProcess() || name.equals("vmd-direct")) {
      watched.add(new Target.Watched(options.inProcess() && name.startsWith("vmd") ? "harness (VMD in it)" : "harness",
          ProcessHandle.current().pid(), harnessSafepoints, RoleMetrics::allocatedBytes));
    }
    Map<String, ProcessCpu.Snapshot> before = new LinkedHashMap<>();
    Map<String, HeapReading> heapBefore = new LinkedHashMap<>();
    for (Target.Watched p : watched) {
      heapBefore.put(p.name(), HeapReading.of(p.allocatedBytes()));
      before.put(p.name(), ProcessCpu.of(p.pid()));
      if (p.safepoints() != null) {
        p.safepoints().sinceLastRead();
      }
    }
    CpuWatch machine = new CpuWatch();
    Result r;
    CpuWatch.Usage used;
    try {
      r = d.run(w, options.regionBytes(), (long) (options.seconds() * 1e9));
    } finally {
      used = machine.stop();
    }
    long ops = Math.max(1, r.operations);
    List<ProcessUse> uses = new ArrayList<>();
    SafepointLog.Pauses pauses = SafepointLog.Pauses.NONE;
    String pauseIn = "";
    for (Target.Watched p : watched) {
      ProcessCpu.Snapshot spent = ProcessCpu.of(p.pid()).minus(before.get(p.name()));
      double heap = heapBefore.get(p.name()).allocatedSince(p.allocatedBytes());
      uses.add(new ProcessUse(p.name(), spent.totalMicros() / ops, spent.jitMicros() / ops, heap < 0 ? -1 : heap / ops));
      if (p.safepoints() != null) {
        SafepointLog.Pauses got = p.safepoints().sinceLastRead();
        if (got.maxNanos() > pauses.maxNanos()) {
          pauseIn = p.name() + " " + got.longest();
        }
        pauses = pauses.max(got);
      }
    }
    if (r.clientCpuMicros >= 0) {
      uses.add(new ProcessUse(client, r.clientCpuMicros / ops, 0, -1));
    }
    t.processes(); // throws if one of them died during the run
    double cpuPerOp = used == null ? -1 : used.busyMicros() / ops;
    double kernel = used == null || used.busyMicros() == 0 ? -1 : used.systemMicros() / used.busyMicros();
    Row row = new Row(name, replicas, phase, client, w.name(), r.micros(50), r.micros(90), r.micros(99), r.micros(99.9),
        r.iops(), r.megabytesPerSecond(), pauses.maxNanos() / 1000.0, pauseIn, pauses.count(), cpuPerOp, kernel,
        uses);
    if (r.hasHistogram()) {
      histograms.put(row, r.latencyNanos);
    }
    return row;
  }

  /**
   * Turns on safepoint logging in this JVM (jcmd's VM.log, through its MBean), so the harness's own
   * pauses, and with --in-process VMD's, are read like the child processes'. Null if the JVM refuses.
   */
  private SafepointLog logOwnSafepoints() {
    try {
      Path file = Files.createTempFile("vmd-bench-harness", ".safepoints");
      file.toFile().deleteOnExit();
      ManagementFactory.getPlatformMBeanServer().invoke(new ObjectName("com.sun.management:type=DiagnosticCommand"),
          "vmLog", new Object[] {new String[] {"output=" + file, "what=safepoint=info"}},
          new String[] {String[].class.getName()});
      return new SafepointLog(file);
    } catch (Exception e) {
      progress.println("the harness's own pauses are not measured: " + e);
      return null;
    }
  }

  private Target open(String name, int replicas) throws Exception {
    switch (name) {
      case "vmd-nbd":
      case "vmd-direct":
        if (options.inProcess()) {
          return VmdStack.start(options.regionBytes(), replicas, name.equals("vmd-nbd"));
        }
        return deployed(options.launcher(), replicas, name.equals("vmd-nbd"), false, true);
      case BASELINE: {
        if (options.baseline().isEmpty() || options.inProcess()) {
          throw new IllegalArgumentException(BASELINE + " needs --baseline-jar and VMD as separate processes");
        }
        return deployed(options.baseline(), replicas, true, false, false); // an older build may lack --unix
      }
      case TLS:
        if (options.inProcess()) {
          throw new IllegalArgumentException(TLS + " runs VMD as separate processes only");
        }
        return deployed(options.launcher(), replicas, true, true, true);
      case "nbdkit":
        return ExternalNbd.of("nbdkit", List.of("nbdkit"), nbdkit("memory", String.valueOf(options.regionBytes())));
      case "nbdkit-hop":
        // The shape of VMD without its cluster: a front process that keeps no pages (nbdkit's nbd plugin)
        // and a store process behind one loopback TCP hop (nbdkit's memory plugin). What the hop costs.
        return ExternalNbd.of("nbdkit-hop", List.of("nbdkit store", "nbdkit front"),
            nbdkit("memory", String.valueOf(options.regionBytes())),
            nbdkit("nbd", "uri=nbd://127.0.0.1:%BEHIND%/"));
      case "null-nbd": {
        List<String> cmd = new ArrayList<>(options.launcher().subList(0, options.launcher().size() - 1));
        cmd.addAll(List.of(NullNbdServer.class.getName(), "%PORT%", String.valueOf(options.regionBytes())));
        return ExternalNbd.of("null-nbd", List.of("null-nbd"), cmd);
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

          public List<Watched> processes() {
            return List.of(new Watched("redis-server", p.pid(), null));
          }

          public void close() throws Exception {
            p.close();
          }
        };
      }
      default:
        throw new IllegalArgumentException("unknown target '" + name
            + "' (vmd-nbd, vmd-nbd-tls, vmd-nbd@base, vmd-direct, nbdkit, nbdkit-hop, null-nbd, redis)");
    }
  }

  /** VMD as deployed, its processes started by {@code launcher}; says how each warmed up. */
  private DeployedStack deployed(List<String> launcher, int replicas, boolean viaNbd, boolean tls, boolean unixSocket)
      throws Exception {
    DeployedStack stack = DeployedStack.start(launcher, options.jvmOptions(), options.regionBytes(), replicas, viaNbd,
        tls, unixSocket);
    for (String line : stack.warmUps()) {
      progress.println("  " + line);
    }
    return stack;
  }

  private static List<String> nbdkit(String plugin, String arg) {
    return List.of("nbdkit", "-f", "-i", "127.0.0.1", "-p", "%PORT%", plugin, arg);
  }

  /**
   * The yardsticks a VMD row is compared with: for the gateway nbdkit (one process) and nbdkit-hop (the
   * same pages behind one more process and TCP hop, as VMD's are), for the client Redis.
   */
  private static List<String> yardsticks(String target) {
    return switch (target) {
      case "vmd-nbd" -> List.of("nbdkit", "nbdkit-hop");
      case "vmd-direct" -> List.of("redis");
      default -> List.of();
    };
  }

  private Row find(String target, int replicas, String phase, String client, String workload) {
    for (Row r : rows) {
      if (r.target().equals(target) && r.replicas() == replicas && r.phase().equals(phase) && r.client().equals(client)
          && r.workload().equals(workload)) {
        return r;
      }
    }
    return null;
  }

  private void printTable() {
    out.printf(Locale.ROOT, "%nvmd bench fault: %.0f s per workload (warm-up %.0f s), %d MiB region, %d cores, Java %s, %s%n",
        options.seconds(), options.warmUpSeconds(), options.regionBytes() >> 20, Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.version"), options.inProcess() ? "VMD in the harness's JVM" : "VMD as separate processes");
    for (Workload w : workloads) {
      out.printf(Locale.ROOT, "%n%-42s %9s %9s %9s %9s %10s %9s %10s %11s %7s%n", w.name(), "p50 µs", "p90 µs",
          "p99 µs", "p99.9 µs", "IOPS", "MB/s", "pause max", "CPU µs/op", "kernel");
      for (String phase : options.phases()) {
        for (String client : options.clients()) {
          List<Row> group = rows.stream()
              .filter(r -> r.workload().equals(w.name()) && r.phase().equals(phase) && r.client().equals(client)).toList();
          for (Row r : group) {
            out.printf(Locale.ROOT, "  %-40s %9.1f %9.1f %9.1f %9.1f %10.0f %9.1f %7.2f ms %11.1f %6.0f%%%n", r.label(),
                r.p50(), r.p90(), r.p99(), r.p999(), r.iops(), r.mbPerSecond(), r.pauseMaxMicros() / 1000,
                r.cpuMicrosPerOp(), r.kernelShare() * 100);
            StringBuilder per = new StringBuilder();
            for (ProcessUse u : r.processes()) {
              per.append(per.length() == 0 ? "" : " · ").append(String.format(Locale.ROOT, "%s %.1f", u.process(),
                  u.cpuMicrosPerOp()));
              if (u.jitMicrosPerOp() >= 0.05) {
                per.append(String.format(Locale.ROOT, " (JIT %.1f)", u.jitMicrosPerOp()));
              }
            }
            out.printf(Locale.ROOT, "      CPU µs/op by process: %s%s%n", per,
                r.pauseIn().isEmpty() ? "" : "; longest pause: " + r.pauseIn());
            StringBuilder heap = new StringBuilder();
            for (ProcessUse u : r.processes()) {
              if (u.heapBytesPerOp() >= 0) {
                heap.append(heap.length() == 0 ? "" : " · ").append(String.format(Locale.ROOT,
                    u.heapBytesPerOp() < 100 ? "%s %.1f" : "%s %,.0f", u.process(), u.heapBytesPerOp()));
              }
            }
            if (heap.length() > 0) {
              out.printf(Locale.ROOT, "      heap bytes allocated per op: %s%n", heap);
            }
          }
          for (Row r : group) {
            for (String yardstick : yardsticks(r.target())) {
              Row y = find(yardstick, 1, phase, client, w.name());
              if (y == null) {
                continue;
              }
              printRatio(r, y, phase);
            }
            Row base = r.target().equals("vmd-nbd") ? find(BASELINE, r.replicas(), phase, client, w.name()) : null;
            if (base != null) {
              printRatio(r, base, phase);
            }
            Row plain = r.target().equals(TLS) ? find("vmd-nbd", r.replicas(), phase, client, w.name()) : null;
            if (plain != null) {
              printRatio(r, plain, phase);
            }
            Row tcp = client.equals(FIO_UNIX) ? find(r.target(), r.replicas(), phase, "fio", w.name()) : null;
            if (tcp != null) {
              printRatio(r, tcp, phase);
            }
            printFloor(r, phase, client, w);
          }
        }
      }
      if (options.phases().contains("cold") && options.phases().contains("warm")) {
        for (Row c : rows) {
          Row warm = c.workload().equals(w.name()) && c.phase().equals("cold")
              ? find(c.target(), c.replicas(), "warm", c.client(), w.name())
              : null;
          if (warm != null) {
            out.printf(Locale.ROOT, "  %-40s %9.2f %9.2f %9.2f %9.2f %10.2f %9.2f%n",
                "cold / warm " + c.label().substring(5), c.p50() / warm.p50(), c.p90() / warm.p90(), c.p99() / warm.p99(),
                c.p999() / warm.p999(), c.iops() / warm.iops(), c.mbPerSecond() / warm.mbPerSecond());
          }
        }
      }
    }
    out.flush();
  }

  /** One row over another, column by column. */
  private void printRatio(Row r, Row y, String phase) {
    String yLabel = y.label().substring(phase.length() + 1);
    out.printf(Locale.ROOT, "  %-40s %9.2f %9.2f %9.2f %9.2f %10.2f %9.2f %10s %11.2f%n",
        r.label() + " / " + yLabel, r.p50() / y.p50(), r.p90() / y.p90(), r.p99() / y.p99(),
        r.p999() / y.p999(), r.iops() / y.iops(), r.mbPerSecond() / y.mbPerSecond(), "",
        r.cpuMicrosPerOp() / y.cpuMicrosPerOp());
  }

  /**
   * At depth 1, VMD's latency against the least a design with one more hop can have: nbdkit's request
   * plus one request to null-nbd (a loopback round trip to a process that answers at once).
   */
  private void printFloor(Row r, String phase, String client, Workload w) {
    Row kit = w.queueDepth() == 1 && r.target().equals("vmd-nbd") ? find("nbdkit", 1, phase, client, w.name()) : null;
    Row hop = kit == null ? null : find("null-nbd", 1, phase, client, w.name());
    if (hop != null) {
      out.printf(Locale.ROOT, "  %-40s %9.2f %9.2f %9.2f %9.2f%n", r.label() + " / (nbdkit + null-nbd)",
          r.p50() / (kit.p50() + hop.p50()), r.p90() / (kit.p90() + hop.p90()), r.p99() / (kit.p99() + hop.p99()),
          r.p999() / (kit.p999() + hop.p999()));
    }
  }

  /** A row of --json-file and --csv-file, rounded as the table prints it; the units are in the names. */
  record RowOut(String target, int replicas, String phase, String client, String workload, double p50Us, double p90Us,
      double p99Us, double p999Us, long iops, double mbPerS, double pauseMaxUs, String pauseIn, int pauses,
      double cpuUsPerOp, double kernelShare, List<ProcessOut> processes) {
    static RowOut of(Row r) {
      return new RowOut(r.target(), r.replicas(), r.phase(), r.client(), r.workload(), round(r.p50(), 1),
          round(r.p90(), 1), round(r.p99(), 1), round(r.p999(), 1), Math.round(r.iops()), round(r.mbPerSecond(), 1),
          round(r.pauseMaxMicros(), 1), r.pauseIn(), r.pauses(), round(r.cpuMicrosPerOp(), 1),
          round(r.kernelShare(), 3), r.processes().stream()
              .map(u -> new ProcessOut(u.process(), round(u.cpuMicrosPerOp(), 2), round(u.jitMicrosPerOp(), 2),
                  round(u.heapBytesPerOp(), 1))).toList());
    }
  }

  /** One process's CPU and heap allocation per request in a row (-1: allocation not known). */
  record ProcessOut(String process, double cpuUsPerOp, double jitUsPerOp, double heapBytesPerOp) {}

  /** The CSV row: the processes flattened into one column, "name=cpu/jit/heap;...". */
  record CsvRow(String target, int replicas, String phase, String client, String workload, double p50Us, double p90Us,
      double p99Us, double p999Us, long iops, double mbPerS, double pauseMaxUs, double cpuUsPerOp, double kernelShare,
      String processes) {
    static CsvRow of(RowOut r) {
      return new CsvRow(r.target(), r.replicas(), r.phase(), r.client(), r.workload(), r.p50Us(), r.p90Us(), r.p99Us(),
          r.p999Us(), r.iops(), r.mbPerS(), r.pauseMaxUs(), r.cpuUsPerOp(), r.kernelShare(),
          String.join(";", r.processes().stream()
              .map(u -> u.process() + "=" + u.cpuUsPerOp() + "/" + u.jitUsPerOp() + "/" + u.heapBytesPerOp()).toList()));
    }
  }

  private String json() {
    return BenchFiles.json("rows", rows.stream().map(RowOut::of).toList());
  }

  private void writeFiles() throws Exception {
    if (options.json() != null) {
      Files.writeString(options.json(), json());
      progress.println("wrote " + options.json());
    }
    if (options.csv() != null) {
      String sb = BenchFiles.csv(CsvRow.class, rows.stream().map(RowOut::of).map(CsvRow::of).toList());
      Files.writeString(options.csv(), sb);
      progress.println("wrote " + options.csv());
    }
    if (options.plot() != null) {
      List<CdfPlot.Panel> panels = new ArrayList<>();
      for (String phase : options.phases()) {
        for (Workload w : workloads) {
          if (w.queueDepth() != 1) {
            continue;
          }
          List<CdfPlot.Series> series = new ArrayList<>();
          for (Row r : rows) {
            if (r.phase().equals(phase) && r.workload().equals(w.name()) && histograms.containsKey(r)) {
              series.add(new CdfPlot.Series(r.label().substring(phase.length() + 1), histograms.get(r)));
            }
          }
          if (!series.isEmpty()) {
            panels.add(new CdfPlot.Panel(w.name() + ", " + phase + ": latency CDF", series));
          }
        }
      }
      Files.writeString(options.plot(), CdfPlot.svg(panels));
      progress.println("wrote " + options.plot());
    }
  }

  /**
   * A process's allocated heap bytes at the start of a measurement, read twice in a row: the second
   * read minus the first is what one read costs the process (a /metrics scrape allocates its text),
   * taken off what the measurement saw.
   */
  record HeapReading(long bytes, long perRead) {
    static final HeapReading UNKNOWN = new HeapReading(-1, 0);

    static HeapReading of(LongSupplier allocated) {
      if (allocated == null) {
        return UNKNOWN;
      }
      long first = allocated.getAsLong();
      long second = allocated.getAsLong();
      return first < 0 || second < 0 ? UNKNOWN : new HeapReading(second, second - first);
    }

    /** Bytes allocated from this reading to {@code now} (read once more), or -1 when unknown. */
    double allocatedSince(LongSupplier allocated) {
      if (bytes < 0) {
        return -1;
      }
      long now = allocated.getAsLong();
      return now < 0 ? -1 : Math.max(0, now - bytes - perRead);
    }
  }
}
