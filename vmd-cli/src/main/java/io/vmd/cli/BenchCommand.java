package io.vmd.cli;

import io.vmd.bench.fault.FaultBench;
import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Run VMD's benchmarks.",
    subcommands = {BenchCommand.Fault.class})
final class BenchCommand {
  @picocli.CommandLine.ParentCommand Vmd vmd;

  @Command(name = "fault", mixinStandardHelpOptions = true, description = {
    "Page-fault latency: 4 KiB page-in and page-out at depth 1, 4 KiB 70/30 at depth 32, 1 MiB sequential,",
    "against VMD through the NBD gateway, VMD through its client, nbdkit's memory plugin and Redis,",
    "all started here on 127.0.0.1, side by side."})
  static final class Fault implements Callable<Integer> {
    @Option(names = "--seconds", defaultValue = "5", description = "Seconds per workload and target (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--region", defaultValue = "256M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Bytes each target holds and the workloads address (default: ${DEFAULT-VALUE}).")
    long region;

    @Option(names = "--targets", defaultValue = "vmd-nbd,vmd-direct,nbdkit,redis", split = ",",
        description = "Targets to measure (default: ${DEFAULT-VALUE}).")
    List<String> targets;

    @Option(names = "--workloads", split = ",", paramLabel = "NAME",
        description = "Workloads to run: page-in, page-out, mixed, seq-read, seq-write (default: all).")
    List<String> workloads = new ArrayList<>();

    @Option(names = "--json-file", paramLabel = "FILE", description = "Also write the results as JSON (--json prints them instead of the table).")
    Path json;

    @picocli.CommandLine.ParentCommand BenchCommand bench;

    @Option(names = "--csv", paramLabel = "FILE", description = "Also write the results as CSV.")
    Path csv;

    @Option(names = "--plot", defaultValue = "vmd-bench-fault.svg", paramLabel = "FILE",
        description = "Latency CDF plot, SVG (default: ${DEFAULT-VALUE}).")
    Path plot;

    @Override
    public Integer call() throws Exception {
      List<String> missing = new ArrayList<>();
      if (targets.contains("nbdkit") && !onPath("nbdkit")) {
        missing.add("nbdkit");
      }
      if (targets.contains("redis") && !onPath("redis-server")) {
        missing.add("redis-server");
      }
      if (!missing.isEmpty()) {
        install(missing);
      }
      new FaultBench(new FaultBench.Options(targets, workloads, seconds, region, json, csv, plot, bench.vmd.json), System.out,
          System.err).run();
      return 0;
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
}
