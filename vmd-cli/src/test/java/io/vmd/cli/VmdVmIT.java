package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** QEMU guests on namespaces: `vmd vm`, `vmd migrate`, gateway restarts and host agents. */
class VmdVmIT extends VmdProcesses {
  /** `vmd vm`: a QEMU guest on a namespace, listed, ballooned and stopped over QMP by separate commands. */
  @Test
  void vmCommandsStartListBalloonAndStopAGuestOnANamespace() throws Exception {
    Path build = Path.of("..", "benchmarks", "vmlab", "build.sh").toAbsolutePath().normalize();
    Result lab = tool(build.toString());
    assertThat(lab.exit()).as(lab.err()).isZero();
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "256M");
    assertThat(vmd("ns", "create", "guest-swap", "--size", "256M", "--meta", flag).exit()).isZero();
    String gwMetrics = metricsOf(Pattern.compile("NBD gateway listening on (\\S+)"), "gateway", "--listen",
        "127.0.0.1:0", "--meta", flag, "--metrics", "127.0.0.1:0");
    Matcher gw = Pattern.compile("listening on (\\S+) \\(owner id ([^)]+)\\)").matcher(lastLine);
    assertThat(gw.find()).isTrue();
    String sourceOwner = gw.group(2);
    // The destination's host has its own gateway: the namespace changes hands at switch-over.
    startAndWait(Pattern.compile("NBD gateway listening on (\\S+)"), "gateway", "--listen", "127.0.0.1:0",
        "--meta", flag);
    Matcher gw2 = Pattern.compile("listening on (\\S+) ").matcher(lastLine);
    assertThat(gw2.find()).isTrue();
    String vms = tmp.resolve("vms").toString();
    Result start = vmd("vm", "start", "g1", "--memory", "256M", "--namespace", "guest-swap", "--gateway",
        gw.group(1), "--vm-dir", vms);
    assertThat(start.exit()).as(start.err()).isZero();
    assertThat(start.out()).contains("VM 'g1' running");
    try {
      // Booted and idle before it is ballooned and tracked: a guest still booting pages in, and the
      // tracker then rightly grows its reservation (the run this was seen in: 243 -> 250 MiB).
      awaitSerial(tmp.resolve("vms").resolve("g1").resolve("serial.log"), 180, "VMLAB: idle");
      Result again = vmd("vm", "start", "g1", "--namespace", "guest-swap", "--gateway", gw.group(1), "--vm-dir", vms);
      assertThat(again.exit()).isEqualTo(1);
      assertThat(again.err()).contains("already running");
      Result list = vmd("vm", "list", "--vm-dir", vms, "--json");
      assertThat(list.out()).contains("\"name\":\"g1\"").contains("\"status\":\"running\"")
          .contains("\"namespace\":\"guest-swap\"");
      Result balloon = vmd("vm", "balloon", "g1", "192M", "--vm-dir", vms);
      assertThat(balloon.exit()).as(balloon.err()).isZero();
      assertThat(balloon.out()).contains("balloon target 192.0 MiB");
      // The working-set loop, two steps: the idle guest pages nothing in, so its reservation shrinks.
      Result track = vmd("vm", "track", "g1", "--gateway-metrics", gwMetrics, "--steps", "2", "--interval", "200ms",
          "--min", "128M", "--vm-dir", vms);
      assertThat(track.exit()).as(track.err()).isZero();
      Matcher steps = Pattern.compile("VM 'g1': page-ins \\S+ \\S+/s, reservation ([0-9.]+) MiB").matcher(track.out());
      assertThat(steps.find()).as(track.out()).isTrue();
      double first = Double.parseDouble(steps.group(1));
      assertThat(steps.find()).as(track.out()).isTrue();
      assertThat(Double.parseDouble(steps.group(1))).isLessThan(first);
      assertThat(first).isLessThan(256);
      String serial = Files.readString(tmp.resolve("vms").resolve("g1").resolve("serial.log"));
      assertThat(serial).doesNotContain("FAILED");
      // A destination on the same namespace through the other gateway, and a post-copy migration into it.
      Result dst = vmd("vm", "start", "g1-dst", "--memory", "256M", "--namespace", "guest-swap", "--gateway",
          gw2.group(1), "--vm-dir", vms, "--incoming");
      assertThat(dst.exit()).as(dst.err()).isZero();
      assertThat(dst.out()).contains("VM 'g1-dst' inmigrate");
      String epochBefore = nsField(flag, "epoch");
      assertThat(nsField(flag, "owner")).isEqualTo(sourceOwner);
      Result mig = vmd("migrate", "g1", "--to", "g1-dst", "--policy", "post-copy", "--bandwidth", "1Gbit",
          "--vm-dir", vms, "--json", "--meta", flag);
      assertThat(mig.exit()).as(mig.err()).isZero();
      assertThat(mig.out()).contains("\"policy\":\"post-copy\"").doesNotContain("\"postcopy\":0,")
          .doesNotContain("\"swap_handover_ms\":-1");
      // Secure: the stream ran over TLS with the host's node certificate, its key kept 0600.
      Path serverKey = tmp.resolve("vms").resolve("g1").resolve("migration-tls").resolve("server")
          .resolve("server-key.pem");
      assertThat(Files.getPosixFilePermissions(serverKey)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
      // The source's gateway was fenced at switch-over: it owns the namespace no more.
      assertThat(Long.parseLong(nsField(flag, "epoch"))).isGreaterThan(Long.parseLong(epochBefore));
      assertThat(nsField(flag, "owner")).isNotEqualTo(sourceOwner);
      Result moved = vmd("vm", "list", "--vm-dir", vms, "--json");
      assertThat(moved.out()).contains("\"name\":\"g1\",\"status\":\"postmigrate\"")
          .contains("\"name\":\"g1-dst\",\"status\":\"running\"");
      Result bad = vmd("migrate", "g1", "--to", "g1-dst", "--policy", "sideways", "--vm-dir", vms);
      assertThat(bad.exit()).isEqualTo(2);
      assertThat(bad.err()).contains("pre-copy, post-copy or agile");
    } finally {
      Result stop = vmd("vm", "stop", "g1", "--vm-dir", vms);
      assertThat(stop.exit()).as(stop.err()).isZero();
      vmd("vm", "stop", "g1-dst", "--vm-dir", vms);
    }
    Result after = vmd("vm", "list", "--vm-dir", vms, "--json");
    assertThat(after.out()).contains("\"status\":\"stopped\"");
    Result gone = vmd("vm", "balloon", "g1", "128M", "--vm-dir", vms);
    assertThat(gone.exit()).isEqualTo(1);
    assertThat(gone.err()).contains("not running");
  }

  /**
   * A host's gateway killed (SIGKILL) and restarted under a guest that swaps all the time: QEMU's NBD
   * client reconnects to the gateway's Unix socket, the restarted gateway takes the namespace back at
   * once under its stable owner id (a new epoch), and the guest finds every page it wrote.
   */
  @Test
  void aGatewayKilledAndRestartedUnderASwappingGuestLosesNothing() throws Exception {
    long t0 = System.nanoTime();
    Path build = Path.of("..", "benchmarks", "vmlab", "build.sh").toAbsolutePath().normalize();
    Result lab = tool(build.toString());
    assertThat(lab.exit()).as(lab.err()).isZero();
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "384M");
    assertThat(vmd("ns", "create", "guest-swap", "--size", "320M", "--meta", flag).exit()).isZero();
    Path socket = tmp.resolve("run").resolve("nbd.sock");
    String[] gateway = {"gateway", "--listen", "none", "--unix", socket.toString(), "--owner-id", "host-a",
        "--meta", flag};
    Pattern ready = Pattern.compile("NBD gateway listening on unix:(\\S+)");
    startAndWait(ready, gateway);
    Process first = servers.get(servers.size() - 1);
    String vms = tmp.resolve("vms").toString();
    // A hot set larger than what the balloon leaves resident: the guest swaps for as long as it runs.
    Result start = vmd("vm", "start", "swapper", "--memory", "384M", "--namespace", "guest-swap", "--gateway",
        "unix:" + socket, "--vm-dir", vms, "--append", "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.work=hotset"
            + " vmlab.mb=128 vmlab.hot=96 vmlab.secs=6 vmlab.rate=4000 vmlab.avail=60000");
    assertThat(start.exit()).as(start.err()).isZero();
    Path serial = tmp.resolve("vms").resolve("swapper").resolve("serial.log");
    try {
      awaitSerial(serial, 180, "VMLAB: swap on");
      System.out.printf("gateway restart test: booted at %.1f s%n", (System.nanoTime() - t0) / 1e9);
      assertThat(vmd("vm", "balloon", "swapper", "112M", "--vm-dir", vms).exit()).isZero();
      awaitSerial(serial, 180, "VMLAB: hotset running");
      Thread.sleep(1000);
      String owner = nsField(flag, "owner");
      long epoch = Long.parseLong(nsField(flag, "epoch"));
      System.out.printf("gateway restart test: gateway killed at %.1f s%n", (System.nanoTime() - t0) / 1e9);
      first.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      Thread.sleep(1000); // the guest's requests wait in QEMU meanwhile
      startAndWait(ready, gateway);
      // The workload ends with a check of every page, then PASS or FAILED.
      String result = awaitSerial(serial, 240, "VMLAB: PASS", "VMLAB: FAILED");
      System.out.printf("gateway restart test: %.1f s in, serial:%n%s%n", (System.nanoTime() - t0) / 1e9, result);
      assertThat(result).contains("hotset OK: 128 MiB").contains("VMLAB: PASS").doesNotContain("Oops").doesNotContain("BUG:")
          .doesNotContain("Kernel panic").doesNotContain("error on swap-device").doesNotContain("I/O error");
      assertThat(nsField(flag, "owner")).as("the same owner took it back").isEqualTo(owner);
      assertThat(Long.parseLong(nsField(flag, "epoch"))).as("with a new epoch").isGreaterThan(epoch);
    } finally {
      vmd("vm", "stop", "swapper", "--vm-dir", vms);
    }
  }

  /**
   * A hypervisor host's agent with its own node certificate (role host): it registers, vmd host list
   * shows it, vmd host status reaches its API over mutual TLS as the admin, and a VM is started and
   * stopped on it from the CLI, the control plane recording where it runs. A server's node certificate
   * is not a host's.
   */
  @Test
  void aHostAgentRegistersAndAnswersAdminsThroughItsApi() throws Exception {
    Path build = Path.of("..", "benchmarks", "vmlab", "build.sh").toAbsolutePath().normalize();
    Result lab = tool(build.toString());
    assertThat(lab.exit()).as(lab.err()).isZero();
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "64M");
    Path hostCerts = Files.createDirectories(tmp.resolve("h1-certs"));
    for (String f : List.of("ca.crt", "ca.key", "seal.key")) {
      Files.copy(certs.resolve(f), hostCerts.resolve(f));
    }
    Result made = vmd("cert", "create-node", "h1", "127.0.0.1", "--role", "host", "--certs-dir", hostCerts.toString());
    assertThat(made.exit()).as(made.err()).isZero();
    Files.delete(hostCerts.resolve("ca.key")); // a host keeps no CA key
    Path socket = tmp.resolve("h1-run").resolve("nbd.sock");
    Path vms = tmp.resolve("h1-vms");
    startAndWait(Pattern.compile("host agent 'h1': API on (\\S+),"), "host", "--certs-dir", hostCerts.toString(),
        "--meta", flag, "--api", "127.0.0.1:0", "--socket", socket.toString(), "--vm-dir", vms.toString());
    assertThat(Files.getPosixFilePermissions(socket)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    Result list = vmd("host", "list", "--meta", flag, "--json");
    assertThat(list.exit()).as(list.err()).isZero();
    assertThat(list.out()).contains("\"name\":\"h1\"").contains("\"status\":\"active\"");
    Result status = vmd("host", "status", "h1", "--meta", flag);
    assertThat(status.exit()).as(status.err()).isZero();
    assertThat(status.out()).contains("h1").contains("admin admin");
    // A VM started on h1 through its agent, from this (any) machine; the control plane says where it runs.
    assertThat(vmd("ns", "create", "h1-swap", "--size", "64M", "--replicas", "1", "--meta", flag).exit()).isZero();
    Result start = vmd("vm", "start", "web", "--host", "h1", "--namespace", "h1-swap", "--memory", "128M",
        "--meta", flag);
    assertThat(start.exit()).as(start.err()).isZero();
    assertThat(start.out()).contains("VM 'web' running on host h1");
    assertThat(vms.resolve("web").resolve("qmp.sock")).exists();
    Result cluster = vmd("vm", "list", "--all-hosts", "--meta", flag, "--json");
    assertThat(cluster.out()).contains("\"name\":\"web\",\"host\":\"h1\",\"state\":\"running\"");
    Result twice = vmd("vm", "start", "web", "--host", "h1", "--namespace", "h1-swap", "--meta", flag);
    assertThat(twice.exit()).isEqualTo(1);
    assertThat(twice.err().strip()).isEqualTo("vmd: host 'h1': VM 'web' already runs on host 'h1'");
    Result stop = vmd("vm", "stop", "web", "--host", "h1", "--meta", flag);
    assertThat(stop.exit()).as(stop.err()).isZero();
    assertThat(vmd("vm", "list", "--all-hosts", "--meta", flag, "--json").out()).contains("\"state\":\"stopped\"");
    // The suite's own node certificate is a server's: refused with one line.
    Result wrong = vmd("host", "--meta", flag, "--api", "127.0.0.1:0", "--socket", tmp.resolve("x.sock").toString());
    assertThat(wrong.exit()).isEqualTo(2);
    assertThat(wrong.err()).contains("server's certificate").contains("--role host");
  }
}
