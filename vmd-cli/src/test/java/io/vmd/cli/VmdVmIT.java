package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.vmd.common.lab.EmulatedHosts;
import io.vmd.migration.qemu.QemuVm;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
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
    buildGuest();
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
      assertThat(list.out()).contains("\"name\":\"g1\",\"host\":null,\"state\":\"running\"")
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
      assertThat(moved.out()).contains("\"name\":\"g1\",\"host\":null,\"state\":\"postmigrate\"")
          .contains("\"name\":\"g1-dst\",\"host\":null,\"state\":\"running\"");
      Result bad = vmd("migrate", "g1", "--to", "g1-dst", "--policy", "sideways", "--vm-dir", vms);
      assertThat(bad.exit()).isEqualTo(2);
      assertThat(bad.err()).contains("pre-copy, post-copy or agile");
    } finally {
      Result stop = vmd("vm", "stop", "g1", "--vm-dir", vms);
      assertThat(stop.exit()).as(stop.err()).isZero();
      vmd("vm", "stop", "g1-dst", "--vm-dir", vms);
    }
    Result after = vmd("vm", "list", "--vm-dir", vms, "--json");
    assertThat(after.out()).contains("\"state\":\"stopped\"");
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
    buildGuest();
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
    buildGuest();
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "64M");
    Path hostCerts = nodeCerts("h1", "127.0.0.1", "host");
    Path socket = tmp.resolve("h1-run").resolve("nbd.sock");
    Path vms = tmp.resolve("h1-vms");
    startAndWait(Pattern.compile("host agent 'h1': API on (\\S+),"), "host", "--certs-dir", hostCerts.toString(),
        "--meta", flag, "--api", "127.0.0.1:0", "--socket", socket.toString(), "--vm-dir", vms.toString(),
        "--metrics", "127.0.0.1:0");
    assertThat(Files.getPosixFilePermissions(socket)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    // The agent's metrics port, as every role's: promtool's checks, build_info, liveness and readiness.
    Matcher metricsAt = METRICS_AT.matcher(lastLine);
    assertThat(metricsAt.find()).as(lastLine).isTrue();
    Path scraped = tmp.resolve("host-metrics.txt");
    Files.writeString(scraped, scrape(metricsAt.group(1)));
    Result promtool = toolWithInput(scraped, "promtool", "check", "metrics");
    assertThat(promtool.exit()).as(promtool.out() + promtool.err()).isZero();
    assertThat(Files.readString(scraped)).contains("role=\"host\"").contains("vmd_build_info{");
    assertThat(http(metricsAt.group(1).replace("/metrics", "/healthz"))).isEqualTo("200 ok");
    assertThat(http(metricsAt.group(1).replace("/metrics", "/readyz"))).isEqualTo("200 ready");
    Result list = vmd("host", "list", "--meta", flag, "--json");
    assertThat(list.exit()).as(list.err()).isZero();
    assertThat(list.out()).contains("\"name\":\"h1\"").contains("\"status\":\"active\"")
        .contains("\"agent\":\"up\"");
    Result status = vmd("host", "status", "h1", "--meta", flag);
    assertThat(status.exit()).as(status.err()).isZero();
    assertThat(shape(vmd("--json", "host", "status", "h1", "--meta", flag), HostCommand.AgentStatus.class).host())
        .isEqualTo("h1");
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

  /**
   * The papers' scenario on emulated hosts, each a network namespace on a bridge with a 1 Gbit/s link:
   * the control plane and a memory server on h1, a memory server on h2, hypervisor hosts hv-a (h3) and
   * hv-b (h4), the CLI on the machine itself. A guest that keeps a hot set among cold pages in less RAM
   * than it uses (so it swaps to its namespace all along) moves A to B (agile); on the way back it is
   * cut short by its timeout, then interrupted (it stays on B, still writing), then loses its destination
   * host (killed before switch-over: it stays on B); it survives B's agent being killed and restarted
   * (as for an upgrade), moves back by post-copy and away again by pre-copy. Its workload checks every page it touches as it runs,
   * and every page at the end; when it powers off, it is recorded stopped. A second guest loses its
   * source host in post-copy: it is recorded lost, and its destination's QEMU stopped. `vmd vm list`
   * from the machine itself shows the right host at each step.
   */
  @Test
  void aGuestMovesBetweenEmulatedHostsAndAFailedMigrationLeavesItWhereItWas() throws Exception {
    buildGuest();
    long t0 = System.nanoTime();
    try (EmulatedHosts lab = EmulatedHosts.builder("vmit").hosts(4).subnet("10.231.30").link(1_000_000_000L).up()) {
      try {
        migrationsBetweenHosts(lab, t0);
      } catch (AssertionError | Exception e) {
        // What each host saw: the roles' logs and the guest's console on each hypervisor host.
        for (Path log : hostLogs) {
          System.out.println("==== " + log.getFileName() + "\n" + Files.readString(log));
        }
        for (String host : List.of("hv-a", "hv-b")) {
          if (Files.exists(serial(host))) {
            System.out.println("==== serial on " + host + "\n" + Files.readString(serial(host)));
          }
        }
        throw e;
      } finally {
        for (int i = 1; i <= 4; i++) {
          killHost(lab, i); // the agents' QEMUs outlive them by design
        }
      }
    }
  }

  private final List<Path> hostLogs = new ArrayList<>();
  private final List<Process> agentProcesses = new ArrayList<>();

  private void migrationsBetweenHosts(EmulatedHosts lab, long t0) throws Exception {
    String meta = lab.address(1) + ":7000";
    startAndWaitIn(lab.command(1), Pattern.compile("control-plane voter on"), "meta", "--listen", meta, "--data-dir",
        tmp.resolve("meta").toString(), "--certs-dir", nodeCerts("h1", lab.address(1), "server").toString());
    for (int i = 1; i <= 2; i++) {
      startAndWaitIn(lab.command(i), LISTENING, "server", "--meta", meta, "--listen", lab.address(i) + ":7400",
          "--memory", "256M", "--certs-dir", nodeCerts("h" + i, lab.address(i), "server").toString());
    }
    String[][] agents = new String[3][];
    for (int h = 1; h <= 2; h++) {
      String name = h == 1 ? "hv-a" : "hv-b";
      agents[h] = new String[] {"host", "--meta", meta, "--api", lab.address(h + 2) + ":7420", "--socket",
          tmp.resolve(name + "-run").resolve("nbd.sock").toString(), "--vm-dir", tmp.resolve(name).toString(),
          "--track-min", "144M",
          "--certs-dir", nodeCerts(name, lab.address(h + 2), "host").toString()};
      startAndWaitIn(lab.command(h + 2), Pattern.compile("host agent '" + name + "': API on"), agents[h]);
      hostLogs.add(lastLog);
      agentProcesses.add(servers.get(servers.size() - 1));
    }
    assertThat(vmd("ns", "create", "guest-swap", "--size", "320M", "--replicas", "1", "--meta", meta).exit()).isZero();
    // 224 MiB in 192 MiB of RAM: it swaps for as long as it runs.
    Result start = vmd("vm", "start", "g", "--host", "hv-a", "--namespace", "guest-swap", "--memory", "192M",
        "--append", "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.work=hotset vmlab.mb=224 vmlab.hot=32"
            + " vmlab.secs=140 vmlab.rate=6000", "--meta", meta);
    assertThat(start.exit()).as(start.err()).isZero();
    // A second, idle guest on B, for the end (booting now, beside g's boot, rather than then).
    assertThat(vmd("ns", "create", "h-swap", "--size", "64M", "--replicas", "1", "--meta", meta).exit()).isZero();
    Result h = vmd("vm", "start", "h", "--host", "hv-b", "--namespace", "h-swap", "--memory", "160M", "--meta", meta);
    assertThat(h.exit()).as(h.err()).isZero();
    awaitSerial(serial("hv-a"), 180, "VMLAB: hotset running");
    System.out.printf("hosts test: guest running at %.1f s%n", (System.nanoTime() - t0) / 1e9);
    assertThat(runsOn(meta)).isEqualTo("hv-a");
    assertThat(nsField(meta, "owner")).isEqualTo("hv-a/host");
    long epochOnA = Long.parseLong(nsField(meta, "epoch"));

    // A to B, agile: one pre-copy pass, then post-copy; the namespace changes hands at switch-over.
    Result agile = migrate(meta, "hv-b", "agile", "60s");
    assertThat(agile.exit()).as(agile.err()).isZero();
    MigrateCommand.Migrated moved = shape(agile, MigrateCommand.Migrated.class);
    assertThat(moved.policy()).isEqualTo("agile");
    assertThat(moved.postcopy()).isPositive();
    assertThat(agile.out()).contains("\"policy\":\"agile\"").doesNotContain("\"postcopy\":0,")
        .doesNotContain("\"swap_handover_ms\":-1");
    assertThat(agile.err()).contains("sent,");
    assertThat(runsOn(meta)).isEqualTo("hv-b");
    awaitProgress(serial("hv-b"));
    // At switch-over A's gateway was fenced and B's claimed the namespace: never two writers, nor none.
    assertThat(nsField(meta, "owner")).isEqualTo("hv-b/host");
    assertThat(Long.parseLong(nsField(meta, "epoch"))).isGreaterThan(epochOnA);
    System.out.printf("hosts test: on B at %.1f s%n", (System.nanoTime() - t0) / 1e9);
    // B runs the working-set loop for it: RAM the guest does not page in through B's gateway goes back.
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).untilAsserted(() ->
        assertThat(balloonOn(meta, "hv-b")).as("B's working-set loop shrinks the balloon").isLessThan(192L << 20));
    // Ballooned through B's agent, found through the control plane (no --host).
    Result balloon = vmd("vm", "balloon", "g", "176M", "--meta", meta);
    assertThat(balloon.exit()).as(balloon.err()).isZero();
    assertThat(balloon.out()).contains("VM 'g' on host hv-b: balloon target 176.0 MiB");

    // Cut short by its timeout before switch-over: the guest stays on B, which still owns its swap.
    Result cut = migrate(meta, "hv-a", "pre-copy", "2s", "--bandwidth", "16Mbit");
    assertThat(cut.exit()).isEqualTo(1);
    assertThat(cut.err()).contains("stays on host 'hv-b'").contains("not done within 2 s");
    assertThat(runsOn(meta)).isEqualTo("hv-b");
    assertThat(nsField(meta, "owner")).isEqualTo("hv-b/host");
    awaitProgress(serial("hv-b"));

    // Interrupted (the CLI killed, as by Ctrl-C): B's agent sees its caller gone and cancels.
    Process interrupted = launcher("migrate", "g", "--to", "hv-a", "--policy", "pre-copy", "--bandwidth", "16Mbit",
        "--migration-timeout", "60s", "--meta", meta).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("interrupted.out").toFile()).start();
    awaitSerial(tmp.resolve("interrupted.out"), 60, "active:");
    interrupted.destroy();
    assertThat(interrupted.waitFor(20, TimeUnit.SECONDS)).isTrue();
    awaitState(meta, "g", "hv-b", "running");
    awaitProgress(serial("hv-b"));

    // The destination host dies before switch-over: the guest stays on B.
    Process dying = launcher("migrate", "g", "--to", "hv-a", "--policy", "pre-copy", "--bandwidth", "16Mbit",
        "--migration-timeout", "60s", "--meta", meta).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("dying.out").toFile()).start();
    awaitSerial(tmp.resolve("dying.out"), 60, "active:"); // B sends
    killHost(lab, 3);
    assertThat(dying.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(dying.exitValue()).as(Files.readString(tmp.resolve("dying.out"))).isEqualTo(1);
    assertThat(Files.readString(tmp.resolve("dying.out"))).contains("stays on host 'hv-b'");
    assertThat(runsOn(meta)).isEqualTo("hv-b");
    awaitProgress(serial("hv-b"));
    // The control plane still lists A as a member; its agent does not answer.
    Result hosts = vmd("host", "list", "--json", "--timeout", "3s", "--meta", meta);
    assertThat(shape(hosts, Hosts.class).hosts()).extracting(HostCommand.HostRow::name).contains("hv-a", "hv-b");
    assertThat(hosts.out()).contains("{\"name\":\"hv-a\",\"api\":\"" + lab.address(3) + ":7420\",\"status\":"
        + "\"active\",\"vms\":0,\"agent\":\"unreachable\"}").contains("\"agent\":\"up\"");
    startAndWaitIn(lab.command(3), Pattern.compile("host agent 'hv-a': API on"), agents[1]);
    hostLogs.add(lastLog);

    // B's agent killed (SIGKILL) and started again under the running guest, as for an upgrade: QEMU runs
    // on, its NBD client reconnects to the new gateway, and the new agent takes the VM back.
    Process agentB = agentProcesses.get(1);
    agentB.destroyForcibly();
    assertThat(agentB.waitFor(10, TimeUnit.SECONDS)).isTrue();
    startAndWaitIn(lab.command(4), Pattern.compile("host agent 'hv-b': API on"), agents[2]);
    hostLogs.add(lastLog);
    awaitProgress(serial("hv-b"));
    assertThat(Files.readString(lastLog)).contains("VM 'g' taken back: running");
    System.out.printf("hosts test: failures done at %.1f s%n", (System.nanoTime() - t0) / 1e9);

    // Back to A by post-copy, then to B by pre-copy.
    Result post = migrate(meta, "hv-a", "post-copy", "60s");
    assertThat(post.exit()).as(post.err()).isZero();
    assertThat(runsOn(meta)).isEqualTo("hv-a");
    awaitProgress(serial("hv-a"));
    Result pre = migrate(meta, "hv-b", "pre-copy", "60s");
    assertThat(pre.exit()).as(pre.err()).isZero();
    assertThat(pre.out()).contains("\"postcopy\":0,");
    assertThat(runsOn(meta)).isEqualTo("hv-b");
    System.out.printf("hosts test: migrations done at %.1f s%n", (System.nanoTime() - t0) / 1e9);

    // The workload's last act: every page checked.
    String result = awaitSerial(serial("hv-b"), 180, "VMLAB: PASS", "VMLAB: FAILED");
    System.out.printf("hosts test: %.1f s, serial on B:%n%s%n", (System.nanoTime() - t0) / 1e9, result);
    assertThat(result).contains("hotset OK: 224 MiB").contains("VMLAB: PASS").doesNotContain("Oops")
        .doesNotContain("BUG:").doesNotContain("I/O error").doesNotContain("error on swap-device");
    for (String host : List.of("hv-a", "hv-b")) {
      assertThat(Files.readString(serial(host))).as(host).doesNotContainPattern("bad=[1-9]");
    }
    // The guest powered off: B's agent sees its QEMU end and records it stopped.
    awaitState(meta, "g", "hv-b", "stopped");

    // The source host dies during post-copy: the guest is lost (its pages not yet sent are nowhere),
    // and the destination does not run on with holes; it is never resumed twice.
    awaitSerial(tmp.resolve("hv-b").resolve("h").resolve(QemuVm.SERIAL), 180, "VMLAB: idle");
    Process postcopy = launcher("migrate", "h", "--to", "hv-a", "--policy", "post-copy", "--bandwidth", "8Mbit",
        "--migration-timeout", "120s", "--meta", meta).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("lost.out").toFile()).start();
    awaitSerial(tmp.resolve("lost.out"), 60, "postcopy-active:");
    killHost(lab, 4);
    assertThat(postcopy.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(postcopy.exitValue()).isEqualTo(1);
    awaitState(meta, "h", "hv-a", "lost");
    Result onA = vmd("vm", "list", "--host", "hv-a", "--json", "--meta", meta);
    assertThat(onA.out()).as("A stopped its QEMU of the lost guest").doesNotContain("\"name\":\"h\"");
    System.out.printf("hosts test: done at %.1f s%n", (System.nanoTime() - t0) / 1e9);
  }

  /** Waits until `vmd vm list --all-hosts` records VM {@code vm} on {@code host} in {@code state}. */
  private void awaitState(String meta, String vm, String host, String state) throws Exception {
    String want = "{\"name\":\"" + vm + "\",\"host\":\"" + host + "\",\"state\":\"" + state + "\"";
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).untilAsserted(() ->
        assertThat(vmd("vm", "list", "--all-hosts", "--json", "--meta", meta).out()).contains(want));
  }

  /** The RAM the balloon of VM g leaves it, as its host's agent reports it (vmd vm list --host). */
  private long balloonOn(String meta, String host) throws Exception {
    Result list = vmd("vm", "list", "--host", host, "--json", "--meta", meta);
    assertThat(list.exit()).as(list.err()).isZero();
    Matcher m = Pattern.compile("\"name\":\"g\".*?\"balloon\":(\\d+)").matcher(list.out());
    assertThat(m.find()).as(list.out()).isTrue();
    return Long.parseLong(m.group(1));
  }

  private Path serial(String host) {
    return tmp.resolve(host).resolve("g").resolve(QemuVm.SERIAL);
  }

  private Result migrate(String meta, String to, String policy, String timeout, String... more) throws Exception {
    List<String> args = new ArrayList<>(List.of("migrate", "g", "--to", to, "--policy", policy, "--migration-timeout",
        timeout, "--json", "--meta", meta));
    args.addAll(List.of(more));
    return vmdWithin(120, args.toArray(String[]::new));
  }

  /** The host `vmd vm list --all-hosts` (run on the machine itself, a third host) says runs VM g. */
  private String runsOn(String meta) throws Exception {
    Result list = vmd("vm", "list", "--all-hosts", "--json", "--meta", meta);
    return shape(list, Vms.class).vms().stream().filter(v -> v.name().equals("g") && v.state().equals("running"))
        .map(VmCommand.VmRow::host).findFirst().orElseThrow(() -> new AssertionError("g runs nowhere: " + list.out()));
  }

  /** Two more progress lines of the guest's workload: it runs, and writes. */
  private static void awaitProgress(Path serial) throws Exception {
    int before = Files.readString(serial).split("VMLAB: t=", -1).length;
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() ->
        assertThat(Files.readString(serial).split("VMLAB: t=", -1).length).as("the guest's progress in %s", serial)
            .isGreaterThanOrEqualTo(before + 2));
  }

  /** The guest's kernel and initramfs (benchmarks/vmlab), built once per machine. */
  private void buildGuest() throws Exception {
    Path build = Path.of("..", "benchmarks", "vmlab", "build.sh").toAbsolutePath().normalize();
    Result built = tool(build.toString());
    assertThat(built.exit()).as(built.err()).isZero();
  }

  /**
   * A node certificate of {@code role} naming {@code address}, made by `vmd cert create-node` in a
   * certificates directory of its own, which keeps no CA key (as a host's does not).
   */
  private Path nodeCerts(String name, String address, String role) throws Exception {
    Path d = tmp.resolve("certs-" + name);
    if (Files.exists(d.resolve("node.crt"))) {
      return d;
    }
    Files.createDirectories(d);
    for (String f : List.of("ca.crt", "ca.key", "seal.key")) {
      Files.copy(certs.resolve(f), d.resolve(f));
    }
    Result made = role.equals("host") ? vmd("cert", "create-node", name, address, "--role", "host", "--certs-dir",
        d.toString()) : vmd("cert", "create-node", address, "--certs-dir", d.toString());
    assertThat(made.exit()).as(made.err()).isZero();
    Files.delete(d.resolve("ca.key"));
    return d;
  }

  /** Every process of emulated host {@code i} killed (SIGKILL), as a host that loses its power. */
  private static void killHost(EmulatedHosts lab, int i) throws Exception {
    for (int round = 0; round < 50; round++) {
      Process p = new ProcessBuilder("ip", "netns", "pids", lab.namespaces().get(i - 1)).start();
      String pids = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      p.waitFor();
      if (pids.isEmpty()) {
        return;
      }
      for (String pid : pids.split("\\s+")) {
        new ProcessBuilder("kill", "-9", pid).start().waitFor();
      }
      Thread.sleep(100);
    }
  }
}
