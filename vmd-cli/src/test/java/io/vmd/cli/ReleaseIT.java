package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The release tarball as an operator installs it: unpacked into an empty directory and run from there
 * with {@code JAVA_HOME} unset and no {@code java} on {@code PATH}, so only its own runtime can run it.
 */
class ReleaseIT {
  @TempDir static Path tmp;
  static Path release;

  @BeforeAll
  static void unpack() throws Exception {
    Path tarball = Path.of(System.getProperty("vmd.release"));
    assertThat(tarball).as("the release tarball (vmd-cli's package phase)").isRegularFile();
    Path into = Files.createDirectory(tmp.resolve("opt"));
    assertThat(run(List.of("tar", "-C", into.toString(), "-xzf", tarball.toString()), Map.of(), 60).exit).isZero();
    try (Stream<Path> top = Files.list(into)) {
      release = top.findFirst().orElseThrow();
    }
  }

  @Test
  void vmdUpRunsOnTheReleasesOwnRuntimeAndNbdinfoAttaches() throws Exception {
    Path noJava = toolsWithoutJava();
    Map<String, String> env = Map.of("PATH", noJava.toString(), "HOME", Files.createDirectories(tmp.resolve("home"))
        .toString());
    assertThat(run(List.of("bash", "-c", "command -v java"), env, 10).exit).as("java must not be on PATH").isNotZero();

    ProcessBuilder pb = new ProcessBuilder(release.resolve("bin/vmd").toString(), "up", "--listen", "127.0.0.1:0",
        "--metrics", "127.0.0.1:0", "--meta-listen", "127.0.0.1:0", "--server-memory", "64M", "--size", "64M")
        .redirectError(tmp.resolve("up.log").toFile());
    pb.environment().clear();
    pb.environment().putAll(env);
    Process up = pb.start();
    try {
      Matcher ready = awaitLine(up, Pattern.compile("NBD gateway on (\\S+?),? namespace 'vm1'"), 90);
      Result info = run(List.of("nbdinfo", "nbd://" + ready.group(1) + "/vm1"), Map.of(), 30);
      assertThat(info.exit).as(info.out).isZero();
      assertThat(info.out).contains("export-size: 67108864");
    } finally {
      up.destroy();
      assertThat(up.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(Files.readString(tmp.resolve("up.log"))).doesNotContain("building");
  }

  @Test
  void theDaemonsJarHasNoBenchmarksAndOnlyVmdBenchLoadsThem() throws Exception {
    try (ZipFile jar = new ZipFile(release.resolve("lib/vmd.jar").toFile())) {
      assertThat(jar.stream().map(e -> e.getName())
          .filter(n -> n.startsWith("io/vmd/bench/") || n.startsWith("org/openjdk/jmh/"))).isEmpty();
      assertThat(jar.getEntry("io/vmd/load/SelfWarmUp.class")).as("the roles' warm-up").isNotNull();
    }
    Result alone = run(List.of(release.resolve("runtime/bin/java").toString(), "-jar",
        release.resolve("lib/vmd.jar").toString(), "bench", "meta", "--help"), Map.of(), 30);
    assertThat(alone.exit).as(alone.out).isZero();
    Result withoutJar = run(List.of(release.resolve("runtime/bin/java").toString(), "-jar",
        release.resolve("lib/vmd.jar").toString(), "bench", "meta"), Map.of(), 30);
    assertThat(withoutJar.exit).isNotZero();
    assertThat(withoutJar.out.strip()).startsWith("vmd: the benchmarks are not on the class path").doesNotContain("\n");
    // Through bin/vmd the benchmarks are there: the run names are parsed by a class of vmd-bench.jar.
    Result withJar = run(List.of(release.resolve("bin/vmd").toString(), "bench", "vm-migration", "--runs", "nonesuch"),
        Map.of(), 60);
    assertThat(withJar.out).contains("unknown run 'nonesuch'").doesNotContain("not on the class path");
  }

  @Test
  void theSystemdUnitsVerify() throws Exception {
    // Installed units name /opt/vmd; here the tree is elsewhere, and systemd checks that ExecStart exists.
    Path units = Files.createDirectories(tmp.resolve("units"));
    List<String> cmd = new ArrayList<>(List.of("systemd-analyze", "verify"));
    for (String unit : List.of("vmd-meta.service", "vmd-server.service", "vmd-host.service", "vmd-gateway.service",
        "vmd-gateway.socket")) {
      String text = Files.readString(release.resolve("systemd").resolve(unit));
      if (unit.endsWith(".service")) {
        assertThat(text).contains("ExecStart=/opt/vmd/bin/vmd ").contains("NoNewPrivileges=yes")
            .contains("ProtectSystem=strict").contains("User=vmd").contains("Restart=on-failure");
      }
      Files.writeString(units.resolve(unit), text.replace("/opt/vmd/", release + "/"));
      cmd.add(units.resolve(unit).toString());
    }
    // systemd-analyze also opens each unit's Documentation= man page: the release's own, as installed.
    Result verify = run(cmd, Map.of("MANPATH", release.resolve("man").toString()), 60);
    assertThat(verify.exit).as(verify.out).isZero();
    assertThat(verify.out).isEmpty();
    // An agent's restart must leave its guests running.
    assertThat(Files.readString(release.resolve("systemd/vmd-host.service"))).contains("KillMode=process");
  }

  @Test
  void completionAndManPagesComeWithIt() throws Exception {
    Result complete = run(List.of("bash", "-c", "source " + release.resolve("completion/vmd.bash") + " && complete -p vmd"),
        Map.of(), 30);
    assertThat(complete.exit).as(complete.out).isZero();
    assertThat(complete.out).contains("vmd");
    for (String page : List.of("vmd.1", "vmd-server.1", "vmd-host.1", "vmd-ns-create.1")) {
      assertThat(Files.readString(release.resolve("man/man1").resolve(page))).as(page).contains(".TH ");
    }
    assertThat(Files.readString(release.resolve("etc/vmd.properties"))).contains("vmd.server.memory=");
  }

  /** A directory of the few commands bin/vmd uses, and no java. */
  private static Path toolsWithoutJava() throws IOException {
    Path dir = tmp.resolve("path");
    if (!Files.exists(dir)) {
      Files.createDirectories(dir);
      for (String tool : List.of("bash", "readlink", "dirname", "sed", "cat")) {
        Files.createSymbolicLink(dir.resolve(tool), Path.of("/usr/bin", tool).toRealPath());
      }
    }
    return dir;
  }

  private static Matcher awaitLine(Process p, Pattern line, int seconds) throws Exception {
    CompletableFuture<Matcher> seen = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String l;
        while ((l = out.readLine()) != null) {
          Matcher m = line.matcher(l);
          if (m.find()) {
            seen.complete(m);
          }
        }
      } catch (IOException ended) {
        // the process went away
      }
      seen.completeExceptionally(new AssertionError("vmd up ended before it was ready: " + log()));
    });
    reader.setDaemon(true);
    reader.start();
    return seen.get(seconds, TimeUnit.SECONDS);
  }

  private static String log() {
    try {
      return Files.readString(tmp.resolve("up.log"));
    } catch (IOException e) {
      return "(no log)";
    }
  }

  private record Result(int exit, String out) {}

  /** Runs a command (stdout and stderr together), with {@code env} added to this JVM's environment. */
  private static Result run(List<String> cmd, Map<String, String> env, int seconds) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p = pb.start();
    CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
      try {
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        return e.toString();
      }
    });
    if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(cmd + " took more than " + seconds + " s");
    }
    return new Result(p.exitValue(), out.get(5, TimeUnit.SECONDS));
  }
}
