package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmd.client.ClientConfig;
import io.vmd.common.HostPort;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.meta.FreePorts;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

/**
 * A test kit for the {@code vmd} command end to end, as a user types it: the bin/vmd launcher and the
 * runnable jar, processes started and stopped per test, commands run with a deadline. Every process
 * runs secure, with one set of certificates per test class (VMD_CERTS_DIR), as an operator's hosts do.
 * Test classes extend it; failsafe runs them in parallel forks, so each class makes its own.
 */
abstract class VmdProcesses {
  static final Pattern LISTENING = Pattern.compile("listening on (\\S+?)(,| |$)");
  /** The suite's cluster certificates: a CA, a node certificate for loopback, admin and gateway clients. */
  static Path certs;

  /**
   * JVM options of every process launched here: C1 only (short commands spend more CPU compiling than
   * running, and the suite's two cores are shared), and a class-data archive of the classes a command
   * loads once it is made. Each command then costs about 1.2 s of CPU instead of 2.7.
   */
  static String jvmOptions;

  @BeforeAll
  static void makeCertificates() throws Exception {
    jvmOptions = "-XX:TieredStopAtLevel=1";
    certs = Files.createTempDirectory("vmd-it-certs-");
    new CertsDir(certs).makeCluster(List.of("127.0.0.1", "localhost"), Duration.ofDays(1),
        List.of(new Identity("admin", Role.ADMIN), new Identity("gateway", Role.GATEWAY)));
    // A command that loads what most do (TLS, the control plane's client, picocli) and fails fast.
    Path archive = certs.resolve("vmd-classes.jsa");
    ProcessBuilder dump = launcher("ns", "list", "--meta", "127.0.0.1:1", "--timeout", "1s");
    dump.environment().put("VMD_JAVA_OPTS", jvmOptions + " -XX:ArchiveClassesAtExit=" + archive + " -Xlog:disable");
    Process p = dump.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    if (p.waitFor(60, TimeUnit.SECONDS) && Files.isRegularFile(archive)) {
      // -Xlog:disable: a JVM that cannot map the archive says so on stdout, which the tests read.
      jvmOptions += " -XX:SharedArchiveFile=" + archive + " -Xlog:disable";
    } else {
      p.destroyForcibly();
    }
  }

  /** An in-process client of the suite's cluster, as its admin. */
  static ClientConfig adminConfig(HostPort meta) throws IOException {
    CertsDir d = new CertsDir(certs);
    return ClientConfig.of(List.of(meta)).withTls(ClusterTls.load(d, "client.admin")).withSealKey(d.readSealKey());
  }

  @AfterAll
  static void forgetCertificates() throws IOException {
    try (var walk = Files.walk(certs)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
  final List<Process> servers = new ArrayList<>();
  @TempDir Path tmp;
  /** The line a process printed when it became ready, and the file its stderr goes to. */
  String lastLine;
  Path lastLog;

  @AfterEach
  void stopServers() throws InterruptedException {
    for (Process p : servers) {
      p.destroy();
      if (!p.waitFor(10, TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    }
  }

  static ProcessBuilder launcher(String... args) {
    return launcherIn(List.of(), args);
  }

  /** The launcher run under {@code prefix}, e.g. {@code ip netns exec NS} to run it on an emulated host. */
  static ProcessBuilder launcherIn(List<String> prefix, String... args) {
    List<String> cmd = new ArrayList<>(prefix);
    cmd.add(System.getProperty("vmd.launcher"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("VMD_JAR", System.getProperty("vmd.jar"));
    pb.environment().remove("VMD_META");
    pb.environment().remove("VMD_INSECURE");
    if (!List.of(args).contains("--insecure")) {
      pb.environment().put("VMD_CERTS_DIR", certs.toString());
    }
    // Servers and gateways start here by the dozen: their warm-up is the bench tests' to cover.
    pb.environment().put("VMD_WARM_UP", "0");
    pb.environment().put("VMD_JAVA_OPTS", jvmOptions);
    return pb;
  }

  /** Starts a single-voter control plane process and returns its address. */
  HostPort startMeta(String... more) throws IOException {
    HostPort at = FreePorts.loopback(1).get(0);
    List<String> args = new ArrayList<>(List.of("meta", "--listen", at.toString(), "--data-dir",
        tmp.resolve("meta-" + at.port()).toString()));
    args.addAll(List.of(more));
    startAndWait(Pattern.compile("control-plane voter on"), args.toArray(String[]::new));
    return at;
  }

  /** Starts a server process and returns its address once it says it listens. */
  HostPort startServer(String... args) throws IOException {
    Path log = Files.createTempFile(tmp, "server", ".log");
    Process p = launcher(args).redirectError(log.toFile()).start();
    servers.add(p);
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    String line = out.readLine();
    assertThat(line).as("server output; its log: %s", readQuietly(log)).isNotNull();
    Matcher m = LISTENING.matcher(line);
    assertThat(m.find()).as(line).isTrue();
    return HostPort.parse(m.group(1));
  }

  static String readQuietly(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return e.toString();
    }
  }

  record Result(int exit, String out, String err) {}

  Result vmd(String... args) throws Exception {
    return vmdWithin(60, args);
  }

  /** A command that may take up to {@code seconds} on a busy 2-core host (longer is a hang). */
  Result vmdWithin(long seconds, String... args) throws Exception {
    return run(launcher(args), seconds, args);
  }

  Result run(ProcessBuilder pb, long seconds, String... args) throws Exception {
    File out = Files.createTempFile(tmp, "out", ".txt").toFile();
    File err = Files.createTempFile(tmp, "err", ".txt").toFile();
    Process p = pb.redirectOutput(out).redirectError(err).start();
    boolean done = p.waitFor(seconds, TimeUnit.SECONDS);
    if (!done) {
      p.destroyForcibly();
    }
    assertThat(done).as("vmd %s did not finish within %d s:%n%s", String.join(" ", args), seconds,
        readQuietly(err.toPath())).isTrue();
    return new Result(p.exitValue(), Files.readString(out.toPath()), Files.readString(err.toPath()));
  }

  /** Starts a long-running vmd process and waits for the stdout line that matches {@code ready}. */
  Matcher startAndWait(Pattern ready, String... args) throws IOException {
    return startAndWaitIn(List.of(), ready, args);
  }

  /** As {@link #startAndWait}, run under {@code prefix} (see {@link #launcherIn}). */
  Matcher startAndWaitIn(List<String> prefix, Pattern ready, String... args) throws IOException {
    Path log = Files.createTempFile(tmp, "vmd", ".log");
    lastLog = log;
    Process p = launcherIn(prefix, args).redirectError(log.toFile()).start();
    servers.add(p);
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    StringBuilder seen = new StringBuilder();
    for (String line = out.readLine(); line != null; line = out.readLine()) {
      seen.append(line).append('\n');
      Matcher m = ready.matcher(line);
      if (m.find()) {
        lastLine = line;
        // Keep draining its output so that the process never blocks on a full pipe.
        Thread drain = new Thread(() -> {
          try {
            while (out.readLine() != null) {
              // discard
            }
          } catch (IOException ignored) {
            // process ended
          }
        });
        drain.setDaemon(true);
        drain.start();
        return m;
      }
    }
    throw new AssertionError("vmd " + String.join(" ", args) + " never became ready; stdout:\n" + seen
        + "stderr:\n" + readQuietly(log));
  }

  Result tool(String... command) throws Exception {
    File out = Files.createTempFile(tmp, "out", ".txt").toFile();
    File err = Files.createTempFile(tmp, "err", ".txt").toFile();
    Process p = new ProcessBuilder(command).redirectOutput(out).redirectError(err).start();
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), Files.readString(out.toPath()), Files.readString(err.toPath()));
  }

  static final Pattern METRICS_AT = Pattern.compile("metrics on (http://\\S+/metrics)");

  /** A server or gateway process started with --metrics; returns its metrics URL. */
  String metricsOf(Pattern ready, String... args) throws IOException {
    startAndWait(ready, args);
    Matcher url = METRICS_AT.matcher(lastLine);
    assertThat(url.find()).as(lastLine).isTrue();
    return url.group(1);
  }

  /** "STATUS BODY" of a GET, the body stripped. */
  static String http(String url) throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
        HttpResponse.BodyHandlers.ofString());
    return r.statusCode() + " " + r.body().strip();
  }

  static String scrape(String url) throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(url)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    return r.body();
  }

  /** The serial log once it holds one of {@code texts}; fails after {@code seconds}. */
  static String awaitSerial(Path serial, int seconds, String... texts) throws Exception {
    long deadline = System.nanoTime() + seconds * 1_000_000_000L;
    while (true) {
      String s = Files.exists(serial) ? Files.readString(serial) : "";
      for (String text : texts) {
        if (s.contains(text)) {
          return s;
        }
      }
      assertThat(System.nanoTime() < deadline).as("%s within %d s: %s", List.of(texts), seconds, s).isTrue();
      Thread.sleep(200);
    }
  }

  /** A field of namespace guest-swap as `vmd ns list --json` prints it. */
  /** The shapes of the commands' --json that are lists under a key (README, "JSON output"). */
  record Namespaces(List<NsCommand.NamespaceRow> namespaces) {}

  record Servers(List<ClusterCommand.ServerRow> servers) {}

  record Hosts(List<HostCommand.HostRow> hosts) {}

  record Vms(List<VmCommand.VmRow> vms) {}

  record Certificates(List<CertCommand.CertFile> certificates) {}

  /**
   * Reads a command's --json output with Jackson into its documented shape, strictly: a field it does not
   * know, or one of the shape's missing, fails.
   */
  static <T> T shape(Result r, Class<T> type) throws Exception {
    assertThat(r.exit()).as(r.err()).isZero();
    return shape(r.out(), type);
  }

  static <T> T shape(String json, Class<T> type) throws Exception {
    return Output.JSON.copy().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES,
        DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES).readValue(json, type);
  }

  String nsField(String meta, String field) throws Exception {
    Result list = vmd("ns", "list", "--json", "--meta", meta);
    assertThat(list.exit()).as(list.err()).isZero();
    for (JsonNode n : new ObjectMapper().readTree(list.out()).get("namespaces")) {
      if (n.get("name").asText().equals("guest-swap")) {
        return n.get(field).asText();
      }
    }
    throw new AssertionError("no namespace guest-swap in " + list.out());
  }

  Result toolWithInput(Path input, String... command) throws Exception {
    File out = Files.createTempFile(tmp, "out", ".txt").toFile();
    File err = Files.createTempFile(tmp, "err", ".txt").toFile();
    Process p = new ProcessBuilder(command).redirectInput(input.toFile()).redirectOutput(out).redirectError(err).start();
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), Files.readString(out.toPath()), Files.readString(err.toPath()));
  }
}
