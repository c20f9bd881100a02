package io.vmd.cli;

import io.vmd.bench.chaos.ChaosBench;
import io.vmd.bench.fault.FaultBench;
import io.vmd.bench.fault.FaultBenchOptions;
import io.vmd.bench.meta.MetaBench;
import io.vmd.bench.migration.MigrationBench;
import io.vmd.bench.migration.VmMigrationBench;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.model.Policy;
import java.io.File;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Run VMD's benchmarks.",
    subcommands = {BenchCommand.Fault.class, BenchCommand.Migration.class, BenchCommand.VmMigration.class, BenchCommand.Chaos.class,
      BenchCommand.Meta.class})
final class BenchCommand {
  @CommandLine.ParentCommand Vmd vmd;

  /**
   * The benchmarks ship in vmd-bench.jar, beside vmd.jar, which bin/vmd puts on the class path of
   * {@code vmd bench} alone: the daemons run without them.
   */
  static void requireBenchmarks() {
    try {
      Class.forName("io.vmd.bench.fault.FaultBench", false, BenchCommand.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException("the benchmarks are not on the class path: vmd bench needs vmd-bench.jar "
          + "beside vmd.jar (lib/bench/ in a release), as bin/vmd bench adds it");
    }
  }

  @Command(name = "fault", mixinStandardHelpOptions = true, description = {
      "Page-fault latency: 4 KiB page-in and page-out at depth 1, 4 KiB 70/30 at depth 32, 1 MiB "
          + "sequential, against VMD through the NBD gateway, VMD through its client, nbdkit's memory plugin, "
          + "the same behind nbdkit's nbd plugin (nbdkit-hop: one more process and TCP hop, as VMD's pages are), "
          + "null-nbd (a process that answers at once: what one hop costs) and Redis, all started here on "
          + "127.0.0.1, side by side. VMD runs as deployed: its control plane, two servers and the gateway each "
          + "a vmd process of its own; CPU per request is reported per process (with its JIT compiler's share), "
          + "pauses are every JVM's safepoints. Each workload is measured warm (after a warm-up run) and cold "
          + "(freshly started processes, right after the region is filled)."})
  static final class Fault implements Callable<Integer> {
    @Option(names = "--seconds", defaultValue = "5", description = "Seconds per workload and target (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--region", defaultValue = "256M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Bytes each target holds and the workloads address (default: ${DEFAULT-VALUE}).")
    long region;

    @Option(names = "--targets", defaultValue = "vmd-nbd,vmd-direct,nbdkit,nbdkit-hop,null-nbd,redis", split = ",",
        description = "Targets to measure (default: ${DEFAULT-VALUE}).")
    List<String> targets;

    @Option(names = "--replicas", defaultValue = "1,2", split = ",", paramLabel = "R",
        description = "Replication factors VMD is measured with (default: ${DEFAULT-VALUE}).")
    List<Integer> replicas;

    @Option(names = "--phases", defaultValue = "warm,cold", split = ",", paramLabel = "PHASE",
        description = "warm: after every workload ran once; cold: fresh processes per workload (default: ${DEFAULT-VALUE}).")
    List<String> phases;

    @Option(names = "--warm-up", paramLabel = "SECONDS",
        description = "Each workload's warm-up run before the warm measurements (default: --seconds).")
    Double warmUp;

    @Option(names = "--client", defaultValue = "own", split = ",", paramLabel = "own|fio|fio-unix",
        description = "Load generator: the harness's own NBD client, fio's nbd engine (NBD targets only), and/or fio "
            + "through the gateway's Unix socket (nbd+unix; deployed VMD only) (default: ${DEFAULT-VALUE}).")
    List<String> clients;

    @Option(names = "--in-process", description = "Run VMD's servers and gateway inside this JVM (the old layout; no cold rows).")
    boolean inProcess;

    @Option(names = "--vmd-jvm-option", paramLabel = "OPTION",
        description = "Another JVM option for the VMD processes (not the harness); repeatable.")
    List<String> vmdJvmOptions = new ArrayList<>();

    @Option(names = "--workloads", split = ",", paramLabel = "NAME",
        description = "Workloads to run: page-in, page-out, mixed, seq-read, seq-write (default: all).")
    List<String> workloads = new ArrayList<>();

    @Option(names = "--json-file", paramLabel = "FILE", description = "Also write the results as JSON (--json prints them instead of the table).")
    Path json;

    @CommandLine.ParentCommand BenchCommand bench;

    @Option(names = "--csv", paramLabel = "FILE", description = "Also write the results as CSV.")
    Path csv;

    @Option(names = "--plot", defaultValue = "vmd-bench-fault.svg", paramLabel = "FILE",
        description = "Latency CDF plot, SVG (default: ${DEFAULT-VALUE}).")
    Path plot;

    @Option(names = "--baseline-jar", paramLabel = "JAR",
        description = "A/B: also measure vmd-nbd with VMD's processes run from this vmd.jar (another build), "
            + "right after vmd-nbd, and print the ratio of the two.")
    Path baselineJar;

    @Override
    public Integer call() throws Exception {
      requireBenchmarks();
      List<String> missing = new ArrayList<>();
      if (targets.stream().anyMatch(t -> t.startsWith("nbdkit")) && !onPath("nbdkit")) {
        missing.add("nbdkit");
      }
      if (targets.contains("redis") && !onPath("redis-server")) {
        missing.add("redis-server");
      }
      if ((clients.contains("fio") || clients.contains("fio-unix")) && !onPath("fio")) {
        missing.add("fio");
      }
      if (!missing.isEmpty()) {
        install(missing);
      }
      FaultBenchOptions options = FaultBenchOptions.builder().targets(targets).workloads(workloads)
          .seconds(seconds, warmUp == null ? seconds : warmUp).regionBytes(region).replicas(replicas).phases(phases)
          .clients(clients).inProcess(inProcess).launcher(launcher(), vmdJvmOptions)
          .output(json, csv, plot, bench.vmd.json).baseline(baseline()).build();
      new FaultBench(options, System.out, System.err).run();
      return 0;
    }

    /** The launcher with the baseline jar as its class path, or empty without one. */
    private List<String> baseline() {
      if (baselineJar == null) {
        return List.of();
      }
      if (!Files.isReadable(baselineJar)) {
        throw new IllegalArgumentException("--baseline-jar " + baselineJar + ": no such file");
      }
      List<String> cmd = new ArrayList<>(launcher());
      cmd.set(cmd.indexOf("-cp") + 1, baselineJar.toAbsolutePath().toString());
      return cmd;
    }

    /**
     * How to start another vmd process the way this one was started: the same java, the same JVM
     * options (the launcher's collector, direct-memory cap, leak detection), the same class path.
     * A debugger's or profiler's agent is not passed on.
     */
    static List<String> launcher() {
      List<String> cmd = new ArrayList<>();
      cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
      for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
        if (!arg.startsWith("-agentlib:") && !arg.startsWith("-javaagent:") && !arg.startsWith("-Xlog:")
            && !arg.startsWith("-XX:AOTCacheOutput") && !arg.startsWith("-XX:AOTMode")) {
          cmd.add(arg);
        }
      }
      cmd.add("-cp");
      cmd.add(System.getProperty("java.class.path"));
      cmd.add(Vmd.class.getName());
      return cmd;
    }

    private static boolean onPath(String tool) {
      return Arrays.stream(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
          .anyMatch(d -> new File(d, tool).canExecute());
    }

    private static void install(List<String> packages) throws Exception {
      if (!"root".equals(System.getProperty("user.name")) || !onPath("apt-get")) {
        throw new IllegalStateException("missing " + String.join(", ", packages) + ": install them (Debian: apt-get install "
            + String.join(" ", packages) + ") or leave them out with --targets");
      }
      System.err.println("installing " + String.join(" ", packages) + " ...");
      run(List.of("apt-get", "update", "-qq"));
      List<String> cmd = new ArrayList<>(List.of("apt-get", "install", "-y", "-qq", "--no-install-recommends"));
      cmd.addAll(packages);
      run(cmd);
    }

    private static void run(List<String> cmd) throws Exception {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
      if (p.waitFor() != 0) {
        throw new IllegalStateException(String.join(" ", cmd) + " failed");
      }
    }
  }

  @Command(name = "migration", mixinStandardHelpOptions = true, description = {
      "The Agile paper's comparison, emulated: guests run on a source host with part of their memory "
          + "swapped to a VMD of three servers (in this process); one is migrated once per policy over a paced "
          + "link while all keep running. Prints tables shaped like the paper's Tables I-III and writes the "
          + "throughput plot; --model also checks the migration-time model against measurements over a grid of W "
          + "and d."})
  static final class Migration implements Callable<Integer> {
    @CommandLine.ParentCommand BenchCommand bench;

    @Option(names = "--guests", defaultValue = "4", description = "Guests on the source host (default: ${DEFAULT-VALUE}).")
    int guests;

    @Option(names = "--memory", defaultValue = "1G", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Memory of each guest (default: ${DEFAULT-VALUE}).")
    long memory;

    @Option(names = "--resident", defaultValue = "0.55", paramLabel = "SHARE",
        description = "Share of each guest's memory kept resident; the rest is in the VMD (default: ${DEFAULT-VALUE}).")
    double resident;

    @Option(names = "--bandwidth", defaultValue = "1Gbit", paramLabel = "RATE",
        description = "The migration link (default: ${DEFAULT-VALUE}).")
    String bandwidth;

    @Option(names = "--workload", defaultValue = "kv", paramLabel = "kv|dirty",
        description = "kv: Redis/YCSB-shaped (zipfian, 50%% updates); dirty: the second paper's W/d program (default: ${DEFAULT-VALUE}).")
    String workload;

    @Option(names = "--rate", defaultValue = "10000", paramLabel = "OPS/S",
        description = "Each guest's target operations per second (dirty: pages dirtied per second) (default: ${DEFAULT-VALUE}).")
    double rate;

    @Option(names = "--policies", split = ",", defaultValue = "pre-copy,post-copy,agile", paramLabel = "POLICY",
        description = "pre-copy (Xen rules), kvm-pre-copy, post-copy, agile (default: ${DEFAULT-VALUE}).")
    List<String> policies;

    @Option(names = "--warm-up", defaultValue = "5", paramLabel = "SECONDS",
        description = "Seconds the guests run before the migration (default: ${DEFAULT-VALUE}).")
    double warmUp;

    @Option(names = "--after", defaultValue = "5", paramLabel = "SECONDS",
        description = "Seconds the migrated guest runs at the destination before the check (default: ${DEFAULT-VALUE}).")
    double after;

    @Option(names = "--seed", defaultValue = "42", description = "Seed of the guests' programs (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--plot", defaultValue = "vmd-bench-migration.svg", paramLabel = "FILE",
        description = "Throughput-over-time plot, SVG (default: ${DEFAULT-VALUE}).")
    Path plot;

    @Option(names = "--json-file", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--model", description = "Also run the model-vs-measured grid (a few minutes).")
    boolean model;

    @Option(names = "--model-plot", defaultValue = "vmd-bench-model.svg", paramLabel = "FILE",
        description = "Model-vs-measured plot, SVG (default: ${DEFAULT-VALUE}).")
    Path modelPlot;

    @Override
    public Integer call() throws Exception {
      requireBenchmarks();
      List<Policy> chosen = new ArrayList<>();
      for (String p : policies) {
        chosen.add(switch (p.trim()) {
          case "pre-copy", "xen-pre-copy" -> Policy.XEN_PRE_COPY;
          case "kvm-pre-copy" -> Policy.KVM_PRE_COPY;
          case "post-copy" -> Policy.POST_COPY;
          case "agile" -> Policy.AGILE;
          default -> throw new IllegalArgumentException("unknown policy '" + p + "' (pre-copy, kvm-pre-copy, post-copy, agile)");
        });
      }
      if (!workload.equals("kv") && !workload.equals("dirty")) {
        throw new IllegalArgumentException("--workload is kv or dirty, not '" + workload + "'");
      }
      if (guests < 1 || resident <= 0 || resident > 1) {
        throw new IllegalArgumentException("need at least one guest and a resident share in (0, 1]");
      }
      new MigrationBench(new MigrationBench.Options(guests, memory,
          resident, Bandwidth.parse(bandwidth), workload, chosen, warmUp, after, rate, 0.5, seed,
          json, plot, model, model ? modelPlot : null), System.out, System.err).run();
      return 0;
    }
  }

  @Command(name = "vm-migration", mixinStandardHelpOptions = true, description = {
      "The Agile paper's comparison with real QEMU guests (TCG unless --accel kvm): per run a fresh guest "
          + "whose swap is a namespace runs a working-set workload, is migrated over a capped link into a QEMU "
          + "on another gateway (the namespace changes hands at switch-over) and checks every page at the "
          + "destination.",
      "Runs: pre-copy and post-copy as the VM runs without VMD (everything resident), agile (balloon + "
          + "hybrid, as vmd migrate does), hybrid+balloon (the same, the pre-copy pass forced even where QEMU "
          + "would lose writes), and the ablations pre-copy+balloon, post-copy+balloon, hybrid-no-balloon. "
          + "Prints Tables I-III, ratios and the verification per run; writes the throughput plot. Needs the "
          + "vmlab guest (benchmarks/vmlab/build.sh)."})
  static final class VmMigration implements Callable<Integer> {
    @Option(names = "--runs", split = ",", paramLabel = "RUN",
        defaultValue = "pre-copy,post-copy,agile,hybrid+balloon,pre-copy+balloon,post-copy+balloon,hybrid-no-balloon",
        description = "Which runs, in order (default: ${DEFAULT-VALUE}).")
    List<String> runs;

    @Option(names = "--memory", defaultValue = "512M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Guest RAM (default: ${DEFAULT-VALUE}).")
    long memory;

    @Option(names = "--workload", defaultValue = "320", paramLabel = "MIB",
        description = "MiB the guest's workload uses (default: ${DEFAULT-VALUE}).")
    int workloadMib;

    @Option(names = "--hot", defaultValue = "48", paramLabel = "MIB",
        description = "Its hot set, MiB (default: ${DEFAULT-VALUE}).")
    int hotMib;

    @Option(names = "--reservation", defaultValue = "160M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "What the balloon leaves the guest in ballooned runs (default: ${DEFAULT-VALUE}).")
    long reservation;

    @Option(names = "--rate", defaultValue = "8000", paramLabel = "OPS/S",
        description = "The workload's pace; 0: as fast as it runs (default: ${DEFAULT-VALUE}).")
    long rate;

    @Option(names = "--bandwidth", defaultValue = "1Gbit", paramLabel = "RATE",
        description = "The migration link (default: ${DEFAULT-VALUE}).")
    String bandwidth;

    @Option(names = "--before", defaultValue = "15", paramLabel = "SECONDS",
        description = "The workload's run before the migration (default: ${DEFAULT-VALUE}).")
    int before;

    @Option(names = "--window", defaultValue = "60", paramLabel = "SECONDS",
        description = "Time the migration has; past it, it is cancelled and reported (default: ${DEFAULT-VALUE}).")
    int window;

    @Option(names = "--after", defaultValue = "10", paramLabel = "SECONDS",
        description = "The workload's run after the window, before every page is checked (default: ${DEFAULT-VALUE}).")
    int after;

    @Option(names = "--accel", defaultValue = "tcg", paramLabel = "tcg|kvm|kvm:tcg",
        description = "QEMU accelerator (default: ${DEFAULT-VALUE}).")
    String accel;

    @Option(names = "--vmlab", paramLabel = "DIR",
        description = "The guest's kernel and initramfs (default: $VMD_VMLAB_DIR or ~/.cache/vmd-vmlab).")
    Path vmlab;

    @Option(names = "--work-dir", paramLabel = "DIR",
        description = "Where the VMs keep their files (default: a new temporary directory).")
    Path workDir;

    @Option(names = "--plot", defaultValue = "vmd-bench-vm-migration.svg", paramLabel = "FILE",
        description = "Throughput-over-time plot, SVG (default: ${DEFAULT-VALUE}).")
    Path plot;

    @Option(names = "--json-file", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--hosts", defaultValue = "local", paramLabel = "local|netns",
        description = "local: both QEMUs on this host, the cluster in this process, the link QEMU's max-bandwidth on "
            + "loopback. netns: four emulated hosts (network namespaces on a bridge, as vmd lab hosts up makes; root "
            + "only), every link capped at --bandwidth by the kernel: the source QEMU and its gateway, the "
            + "destination's, and two memory servers (the control plane beside the first), each role a process as "
            + "deployed; the destination's page-ins cross the memory hosts' links (default: ${DEFAULT-VALUE}).")
    String hosts;

    @Override
    public Integer call() throws Exception {
      requireBenchmarks();
      if (!hosts.equals("local") && !hosts.equals("netns")) {
        throw new IllegalArgumentException("--hosts " + hosts + ": local or netns");
      }
      List<VmMigrationBench.Run> chosen = new ArrayList<>();
      for (String r : runs) {
        chosen.add(VmMigrationBench.Run.parse(r));
      }
      Path lab = vmlab != null ? vmlab : VmDir.vmlab();
      if (!Files.exists(lab.resolve("vmlinuz")) || !Files.exists(lab.resolve("initrd.gz"))) {
        throw new IllegalArgumentException("no guest in " + lab + ": build it with benchmarks/vmlab/build.sh");
      }
      Path dir = workDir != null ? workDir : Files.createTempDirectory("vmd-bench-vm");
      var results = new VmMigrationBench(new VmMigrationBench.Options(
          lab, memory, workloadMib, hotMib, reservation, Bandwidth.parse(bandwidth), rate,
          before, window, after, accel, chosen, plot, json, dir, hosts.equals("netns"), Fault.launcher()), System.out,
          System.err).run();
      // A loop, not a lambda: picocli reads this class's methods, whose types must not name vmd-bench.jar's.
      for (var outcome : results.values()) {
        if (!outcome.verified()) {
          return 1;
        }
      }
      return 0;
    }
  }

  @Command(name = "chaos", mixinStandardHelpOptions = true, description = {
      "Three server processes, two replicas: an NBD writer streams checksummed pages through a gateway "
          + "while one server is SIGKILLed and another restarted empty; then every page is read back and checked.",
      "Prints pages written, verified and lost. Exits 1 if any page was lost or any NBD request failed."})
  static final class Chaos implements Callable<Integer> {
    @Option(names = "--size", defaultValue = "256M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Bytes streamed (default: ${DEFAULT-VALUE}).")
    long size;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the page contents (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
      requireBenchmarks();
      ChaosBench bench = new ChaosBench(size, seed, System.out, System.err);
      ChaosBench.Outcome o = bench.run();
      bench.print(o);
      return o.pagesLost() == 0 && o.nbdErrors() == 0 && o.zeroPages() == 0 && o.pagesVerified() == o.pagesWritten()
          && o.verifiedAfterRestart() == o.pagesWritten() ? 0 : 1;
    }
  }

  @Command(name = "meta", mixinStandardHelpOptions = true, description = {
      "The control plane at scale: 3 real servers and simulated ones up to --servers members; prints "
          + "registration, membership learning, namespace and lease operations per second, connect and attach "
          + "time."})
  static final class Meta implements Callable<Integer> {
    @Option(names = "--servers", defaultValue = "1000", description = "Members in all (default: ${DEFAULT-VALUE}).")
    int servers;

    @Option(names = "--voters", defaultValue = "1", description = "Control-plane voters, 1 or 3 (default: ${DEFAULT-VALUE}).")
    int voters;

    @Option(names = "--namespaces", defaultValue = "500", description = "Namespaces created and claimed (default: ${DEFAULT-VALUE}).")
    int namespaces;

    @Override
    public Integer call() throws Exception {
      requireBenchmarks();
      System.out.printf("vmd bench meta: %d members, %d voter(s), %d namespaces%n", servers, voters, namespaces);
      new MetaBench(servers, voters, namespaces, System.out, System.err).run();
      return 0;
    }
  }
}
