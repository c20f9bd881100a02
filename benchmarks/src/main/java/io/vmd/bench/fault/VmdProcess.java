package io.vmd.bench.fault;

import io.vmd.client.ServerInfo;
import io.vmd.client.VmdClient;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One VMD role ({@code vmd meta}, {@code vmd server}, {@code vmd gateway}) in a JVM of its own, as it is
 * deployed. Started with the harness's own launcher command, it is ready once it prints the line its
 * role prints when it serves; its stderr goes to a log that is shown if it fails. Every JVM logs its
 * safepoints, so pauses in the processes under test are measured, not only the harness's.
 */
public final class VmdProcess implements AutoCloseable {
  /** What each role prints once it serves; group 1 is the address it serves at. */
  public static final Pattern META_READY = Pattern.compile("control-plane voter on (\\S+)");
  public static final Pattern SERVER_READY = Pattern.compile("listening on (\\S+?)(,| |$)");
  public static final Pattern GATEWAY_READY = Pattern.compile("NBD gateway listening on (\\S+?)(,| |$)");

  private final String name;
  private final Process process;
  private final Path log;
  private final SafepointLog safepoints;
  private final CompletableFuture<Matcher> seen;
  private final String args;
  private Matcher ready;
  /** Where it serves /metrics, or null. */
  private URI metrics;

  private VmdProcess(String name, Process process, Path log, SafepointLog safepoints, CompletableFuture<Matcher> seen,
      String args) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.safepoints = safepoints;
    this.seen = seen;
    this.args = args;
  }

  /**
   * Starts {@code vmd ARGS}; {@link #awaitReady} waits for its stdout line matching {@code readyLine}.
   * Several roles start side by side that way (JVM start-up is most of their start).
   *
   * @param launcher the command that runs vmd: java, its options, -cp, the main class
   */
  static VmdProcess launch(String name, List<String> launcher, List<String> jvmOptions, Path dir, Pattern readyLine,
      String... args) throws IOException {
    return launchIn(List.of(), name, launcher, jvmOptions, dir, readyLine, args);
  }

  /**
   * As {@link #launch}, run through {@code prefix} (e.g. {@code ip netns exec NS}, which execs the JVM in
   * an emulated host's network namespace, so the process's pid is the JVM's).
   */
  public static VmdProcess launchIn(List<String> prefix, String name, List<String> launcher, List<String> jvmOptions,
      Path dir, Pattern readyLine, String... args) throws IOException {
    Path log = dir.resolve(name + ".log");
    Path safepointFile = dir.resolve(name + ".safepoints");
    List<String> cmd = new ArrayList<>(prefix);
    cmd.add(launcher.get(0));
    cmd.addAll(jvmOptions);
    cmd.add("-Xlog:safepoint=info:file=" + safepointFile + "::filecount=0");
    cmd.addAll(launcher.subList(1, launcher.size()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(log.toFile());
    // The stack says --certs-dir or --insecure itself; the caller's environment must not add the other.
    pb.environment().remove("VMD_CERTS_DIR");
    pb.environment().remove("VMD_INSECURE");
    Process p = pb.start();
    CompletableFuture<Matcher> seen = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = out.readLine()) != null) {
          Matcher m = readyLine.matcher(line);
          if (!seen.isDone() && m.find()) {
            seen.complete(m);
          }
        }
      } catch (IOException closed) {
        // the process ended
      }
      seen.completeExceptionally(new IOException("exited before it was ready"));
    }, "vmd-bench-" + name + "-stdout");
    reader.setDaemon(true);
    reader.start();
    return new VmdProcess(name, p, log, new SafepointLog(safepointFile), seen, String.join(" ", args));
  }

  /** It was started with {@code --metrics 127.0.0.1:port}: its heap allocation is read there. */
  VmdProcess withMetrics(int port) {
    metrics = URI.create("http://127.0.0.1:" + port + "/metrics");
    return this;
  }

  /**
   * The heap bytes it has allocated so far (its {@code vmd_jvm_allocated_bytes_total}), or -1 when it
   * serves no metrics or has no such counter (a build before it had one).
   */
  long allocatedBytes() {
    return metrics == null ? -1 : MetricsScrape.counter(metrics, "vmd_jvm_allocated_bytes_total");
  }

  /** Waits (at most 60 s) until it says it serves; stops it and throws, with its log, if it does not. */
  public VmdProcess awaitReady() throws IOException, InterruptedException {
    try {
      ready = seen.get(60, TimeUnit.SECONDS);
      return this;
    } catch (ExecutionException | TimeoutException e) {
      close();
      throw new IOException("vmd " + args + " (" + name + ") did not start: "
          + (e instanceof TimeoutException ? "no ready line in 60 s" : e.getCause().getMessage()) + "; its log:\n"
          + tail(log), e);
    }
  }

  public String name() {
    return name;
  }

  long pid() {
    return process.pid();
  }

  /** Group {@code g} of the ready line. */
  public String ready(int g) {
    return ready.group(g);
  }

  SafepointLog safepoints() {
    return safepoints;
  }

  public boolean alive() {
    return process.isAlive();
  }

  /** Lines of its log that match {@code regex}, so far. */
  List<String> logLines(String regex) {
    try {
      Pattern p = Pattern.compile(regex);
      return Files.readAllLines(log).stream().filter(l -> p.matcher(l).find()).toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  public String logTail() {
    return tail(log);
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** SIGTERM, as an operator stops it; SIGKILL if it has not exited in 10 s. */
  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  /** Until the client sees {@code n} servers up and reporting free memory (their first push), 30 s at most. */
  public static void awaitServers(VmdClient client, int n) throws Exception {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (true) {
      long up = client.cluster().refreshAvailability().stream().filter(s -> s.up() && s.free() > 0).count();
      if (up >= n) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("only " + up + " of " + n + " servers up after 30 s: "
            + client.cluster().servers().stream().map(ServerInfo::toString).toList());
      }
      Thread.sleep(100);
    }
  }
}
