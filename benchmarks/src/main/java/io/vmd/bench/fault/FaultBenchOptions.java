package io.vmd.bench.fault;

import java.nio.file.Path;
import java.util.List;

/**
 * What {@code vmd bench fault} runs and where it writes its results; made with {@link #builder()}.
 *
 * @param targets which targets, in order: vmd-nbd, vmd-direct, nbdkit, redis
 * @param workloads which workloads by key (page-in, page-out, mixed, seq-read, seq-write); empty: all
 * @param seconds per workload and target
 * @param warmUpSeconds each workload's run before the warm measurements
 * @param regionBytes bytes each target holds and the workloads address
 * @param replicas the replication factors VMD targets are measured with
 * @param phases "cold" and/or "warm"
 * @param clients "own" (the harness's client) and/or "fio" (fio's nbd engine; NBD targets only)
 * @param inProcess VMD's servers and gateway in the harness's JVM instead of processes of their own
 * @param launcher how to start a vmd process: java, its options, -cp, the main class
 * @param jvmOptions more JVM options for the VMD processes
 * @param baseline how to start a vmd process of another build (an A/B run: target {@code vmd-nbd@base}
 *     runs on it beside {@code vmd-nbd}); empty: none
 */
public record FaultBenchOptions(List<String> targets, List<String> workloads, double seconds, double warmUpSeconds,
    long regionBytes, List<Integer> replicas, List<String> phases, List<String> clients, boolean inProcess,
    List<String> launcher, List<String> jvmOptions, Path json, Path csv, Path plot, boolean jsonToStdout,
    List<String> baseline) {

  /** Options set by name; what is not set is empty, zero or false. */
  public static Builder builder() {
    return new Builder();
  }

  /** Builds {@link FaultBenchOptions} (as Caffeine's {@code newBuilder()}) instead of a constructor of 15 positions. */
  public static final class Builder {
    private List<String> targets = List.of();
    private List<String> workloads = List.of();
    private double seconds;
    private double warmUpSeconds;
    private long regionBytes;
    private List<Integer> replicas = List.of(1);
    private List<String> phases = List.of("warm");
    private List<String> clients = List.of("own");
    private boolean inProcess;
    private List<String> launcher = List.of();
    private List<String> jvmOptions = List.of();
    private Path json;
    private Path csv;
    private Path plot;
    private boolean jsonToStdout;
    private List<String> baseline = List.of();

    private Builder() {}

    public Builder targets(List<String> targets) {
      this.targets = targets;
      return this;
    }

    public Builder workloads(List<String> workloads) {
      this.workloads = workloads;
      return this;
    }

    /** Seconds measured per workload and target, and of each workload's warm-up run. */
    public Builder seconds(double measured, double warmUp) {
      this.seconds = measured;
      this.warmUpSeconds = warmUp;
      return this;
    }

    public Builder regionBytes(long bytes) {
      this.regionBytes = bytes;
      return this;
    }

    public Builder replicas(List<Integer> replicas) {
      this.replicas = replicas;
      return this;
    }

    public Builder phases(List<String> phases) {
      this.phases = phases;
      return this;
    }

    public Builder clients(List<String> clients) {
      this.clients = clients;
      return this;
    }

    public Builder inProcess(boolean inProcess) {
      this.inProcess = inProcess;
      return this;
    }

    /** How to start a vmd process, and more JVM options for it. */
    public Builder launcher(List<String> launcher, List<String> jvmOptions) {
      this.launcher = launcher;
      this.jvmOptions = jvmOptions;
      return this;
    }

    /** Files the results are written to (null: none), and whether JSON goes to stdout instead of a table. */
    public Builder output(Path json, Path csv, Path plot, boolean jsonToStdout) {
      this.json = json;
      this.csv = csv;
      this.plot = plot;
      this.jsonToStdout = jsonToStdout;
      return this;
    }

    /** Also measures {@code vmd-nbd@base}: VMD's processes started by {@code launcher}, another build's. */
    public Builder baseline(List<String> launcher) {
      this.baseline = launcher;
      return this;
    }

    public FaultBenchOptions build() {
      return new FaultBenchOptions(targets, workloads, seconds, warmUpSeconds, regionBytes, replicas, phases, clients,
          inProcess, launcher, jvmOptions, json, csv, plot, jsonToStdout, baseline);
    }
  }
}
