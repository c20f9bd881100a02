package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.meta.FreePorts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The admin commands, certificates, roles and metrics endpoints of server, gateway and control-plane
 * processes.
 */
class VmdCommandIT extends VmdProcesses {
  @Test
  void adminCommandsAgainstTwoServerProcesses() throws Exception {
    HostPort metaAt = startMeta();
    String meta = metaAt.toString();
    HostPort a = startServer("server", "--meta", meta, "--listen", "127.0.0.1:0", "--memory", "64M");
    Path dataDir = tmp.resolve("server-b");
    HostPort b = startServer("server", "--meta", meta, "--listen", "127.0.0.1:0", "--memory", "32M", "--store",
        "chronicle", "--data-dir", dataDir.toString());

    Result created = vmd("--meta", meta, "ns", "create", "vm1", "--size", "16M", "--replicas", "2");
    assertThat(created.exit()).as(created.err()).isZero();
    assertThat(created.out()).contains("vm1").contains("16.0 MiB");
    NsCommand.NamespaceRow made = shape(vmd("--json", "--meta", meta, "ns", "create", "vm2", "--size", "4M",
        "--replicas", "1"), NsCommand.NamespaceRow.class);
    assertThat(made.size()).isEqualTo(4L << 20);
    assertThat(made.owner()).isNull();
    assertThat(vmd("ns", "delete", "vm2", "--meta", meta).exit()).isZero();

    Result serverTable = vmd("cluster", "servers", "--meta", meta);
    assertThat(serverTable.exit()).as(serverTable.err()).isZero();
    assertThat(serverTable.out()).contains(a.toString()).contains(b.toString()).contains("64.0 MiB").contains("32.0 MiB")
        .contains("active");

    // Write 40 pages through the client library; R=2 puts every page on both servers.
    byte[] data = new byte[40 * 4096];
    new Random(7).nextBytes(data);
    try (VmdClient client = VmdClient.connect(adminConfig(metaAt))) {
      Namespace ns = client.attach("vm1", true);
      ns.writeSync(100, data);
    }
    Result info = vmd("ns", "info", "vm1", "--meta", meta, "--json");
    assertThat(info.exit()).as(info.err()).isZero();
    assertThat(info.out())
        .contains("\"server\":\"" + a + "\",\"state\":\"up\",\"pages\":40,\"bytes\":163840")
        .contains("\"server\":\"" + b + "\",\"state\":\"up\",\"pages\":40,\"bytes\":163840");
    NsCommand.NamespaceInfo nsInfo = shape(info, NsCommand.NamespaceInfo.class);
    assertThat(nsInfo.pagesStored()).isEqualTo(40);
    assertThat(nsInfo.pageCopies()).isEqualTo(80);
    assertThat(nsInfo.underReplicated()).isZero();
    assertThat(nsInfo.servers()).hasSize(2);
    assertThat(nsInfo.epoch()).isPositive();
    Result table = vmd("ns", "info", "vm1", "--meta", meta);
    assertThat(table.out()).contains("80 page copies stored").contains("160.0 KiB")
        .contains("40 pages stored, 0 under-replicated");

    // ns attach hands the namespace over: the epoch moves on, and whoever wrote before is refused.
    try (VmdClient client = VmdClient.connect(adminConfig(metaAt))) {
      Namespace writer = client.attach("vm1", true);
      Result taken = vmd("--json", "ns", "attach", "vm1", "--meta", meta);
      assertThat(taken.exit()).as(taken.err()).isZero();
      assertThat(taken.out()).contains("\"epoch\":" + (writer.epoch() + 1)).contains("\"owner\":null");
      assertThat(shape(taken, NsCommand.NamespaceRow.class).epoch()).isEqualTo(writer.epoch() + 1);
      assertThatThrownBy(() -> writer.writeSync(100, data)).hasMessageContaining("epoch");
    }

    Result used = vmd("servers", "--meta", meta, "--json");
    assertThat(used.out()).contains("\"used\":163840");
    assertThat(shape(used, Servers.class).servers()).extracting(ClusterCommand.ServerRow::used).containsOnly(163840L);

    // Errors are one clear line and a non-zero exit, never a stack trace.
    Result missing = vmd("ns", "info", "nope", "--meta", meta);
    assertThat(missing.exit()).isEqualTo(1);
    assertThat(missing.err().strip()).isEqualTo("vmd: no namespace named 'nope'");
    Result again = vmd("ns", "create", "vm1", "--size", "1G", "--meta", meta);
    assertThat(again.exit()).isEqualTo(1);
    assertThat(again.err()).contains("exists").doesNotContain("Exception");
    Result badSize = vmd("ns", "create", "vm3", "--size", "12Q", "--meta", meta);
    assertThat(badSize.exit()).isEqualTo(2);
    assertThat(badSize.err()).contains("12Q").doesNotContain("at io.");
    Result noMeta = vmd("servers");
    assertThat(noMeta.exit()).isEqualTo(2);
    assertThat(noMeta.err()).contains("VMD_META");
    Result dead = vmd("servers", "--meta", "127.0.0.1:1", "--timeout", "1s");
    assertThat(dead.exit()).isEqualTo(1);
    assertThat(dead.err()).startsWith("vmd: control plane [127.0.0.1:1] did not answer").doesNotContain("\n\tat ");

    // The persisted server keeps its identity, namespace table and pages across a restart.
    Process persisted = servers.remove(2);
    persisted.destroy();
    assertThat(persisted.waitFor(20, TimeUnit.SECONDS)).isTrue();
    Result degraded = vmd("ns", "info", "vm1", "--meta", meta, "--timeout", "2s");
    assertThat(degraded.out()).as(degraded.err()).contains("40 pages stored, 40 under-replicated")
        .contains("0 with no live copy");
    HostPort b2 = startServer("server", "--meta", meta, "--listen", b.toString(), "--memory", "32M", "--store",
        "chronicle", "--data-dir", dataDir.toString());
    assertThat(b2).isEqualTo(b);
    assertThat(vmd("cluster", "servers", "--meta", meta).out().lines().filter(l -> l.contains("active")).count())
        .as("the persisted server came back as itself, not as a third member").isEqualTo(2);
    try (VmdClient client = VmdClient.connect(adminConfig(metaAt))) {
      Namespace ns = client.attach("vm1", false);
      assertThat(ns.readSync(100, 40)).isEqualTo(data);
    }

    // Draining a server moves its pages to a third one, and says so on stderr as it goes.
    startServer("server", "--meta", meta, "--listen", "127.0.0.1:0", "--memory", "32M");
    Result drained = vmd("--json", "cluster", "drain", a.toString(), "--progress", "--wait", "60s", "--meta", meta);
    assertThat(shape(drained, ClusterCommand.ServerChange.class).pages()).isZero();
    assertThat(drained.err()).containsPattern("draining " + Pattern.quote(a.toString()) + ": \\d+ pages left after")
        .contains(": 0 pages left");
    try (VmdClient client = VmdClient.connect(adminConfig(metaAt))) {
      assertThat(client.attach("vm1", false).readSync(100, 40)).isEqualTo(data);
    }

    assertThat(shape(vmd("ns", "list", "--meta", meta, "--json"), Namespaces.class).namespaces())
        .extracting(NsCommand.NamespaceRow::name).containsExactly("vm1");
    Result deleted = vmd("--json", "ns", "delete", "vm1", "--meta", meta);
    assertThat(shape(deleted, NsCommand.Deleted.class).deleted()).isEqualTo("vm1");
    Result list = vmd("ns", "list", "--meta", meta, "--json");
    assertThat(list.out().strip()).isEqualTo("{\"namespaces\":[]}");
    // Servers drop the pages of a deleted namespace when they see the deletion (within a poll).
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
        assertThat(vmd("servers", "--meta", meta, "--json").out()).contains("\"used\":0,")
            .doesNotContain("\"used\":163840"));
  }

  @Test
  void vmdUpThenNbdinfoAsANewUserWouldTryIt() throws Exception {
    Matcher up = startAndWait(Pattern.compile("NBD gateway on (\\S+), namespace 'vm1'"),
        "up", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--meta-listen", "127.0.0.1:0",
        "--server-memory", "64M", "--size", "64M");
    String gateway = up.group(1).replaceAll(",$", "");
    Result info = tool("nbdinfo", "nbd://" + gateway + "/vm1");
    assertThat(info.exit()).as(info.err()).isZero();
    assertThat(info.out()).contains("export-size: 67108864").contains("can_multi_conn: true");
    // The empty export name reaches vm1 too.
    Result dflt = tool("nbdinfo", "--size", "nbd://" + gateway);
    assertThat(dflt.out().strip()).isEqualTo("67108864");
    Process p = servers.remove(servers.size() - 1);
    p.destroy(); // SIGTERM, as Ctrl-C would
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isIn(0, 130, 143);
  }

  @Test
  void aServerProcessCanHostTheControlPlanesVoter() throws Exception {
    HostPort voter = FreePorts.loopback(1).get(0);
    HostPort server = startServer("server", "--voter", voter.toString(), "--meta", voter.toString(), "--meta-dir",
        tmp.resolve("voter").toString(), "--listen", "127.0.0.1:0", "--memory", "16M");
    Result created = vmd("ns", "create", "v1", "--size", "4M", "--meta", voter.toString());
    assertThat(created.exit()).as(created.err()).isZero();
    Result members = vmd("cluster", "servers", "--meta", voter.toString(), "--json");
    assertThat(members.out()).contains("\"address\":\"" + server + "\"").contains("\"status\":\"active\"");
  }

  @Test
  void gatewayProcessesServeNamespacesOfServerProcessesAlsoSocketActivated() throws Exception {
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "32M");
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "32M");
    assertThat(vmd("ns", "create", "disk", "--size", "8M", "--meta", flag).exit()).isZero();
    Matcher gw = startAndWait(Pattern.compile("NBD gateway listening on (\\S+)"),
        "gateway", "--listen", "127.0.0.1:0", "--meta", flag);
    String uri = "nbd://" + gw.group(1) + "/disk";
    Path data = tmp.resolve("data.img");
    byte[] bytes = new byte[8 << 20];
    new Random(3).nextBytes(bytes);
    Files.write(data, bytes);
    Result copy = tool("nbdcopy", data.toString(), uri);
    assertThat(copy.exit()).as(copy.err()).isZero();
    Result info = vmd("ns", "info", "disk", "--meta", flag, "--json");
    assertThat(info.out()).contains("\"pages\":").doesNotContain("\"pages\":0,");
    Path back = tmp.resolve("back.img");
    assertThat(tool("nbdcopy", uri, back.toString()).exit()).isZero();
    assertThat(Files.readAllBytes(back)).isEqualTo(bytes);

    // Socket activation, as systemd does it for vmd-gateway.socket, by systemd-socket-activate: it binds
    // a TCP and a Unix socket, starts a gateway at the first connection and hands both over; that client
    // waits in the backlog meanwhile, and both sockets serve.
    assertThat(vmd("ns", "create", "act", "--size", "8M", "--replicas", "1", "--meta", flag).exit()).isZero();
    HostPort tcp = FreePorts.loopback(1).get(0);
    Path socket = tmp.resolve("activated.sock");
    ProcessBuilder gateway = launcher("gateway", "--meta", flag);
    List<String> cmd = new ArrayList<>(List.of("systemd-socket-activate", "-l", tcp.toString(), "-l",
        socket.toString()));
    for (String v : List.of("VMD_JAR", "VMD_CERTS_DIR", "VMD_WARM_UP", "VMD_JAVA_OPTS")) {
      cmd.addAll(List.of("-E", v + "=" + gateway.environment().get(v)));
    }
    cmd.addAll(gateway.command());
    Path log = tmp.resolve("activated.log");
    Process activator = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    servers.add(activator);
    // The activator binds both sockets (and says so) before any client may connect.
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
        .until(() -> Files.readString(log).contains("Listening on " + socket + " as 4."));
    Result first = tool("nbdinfo", "--size", "nbd://" + tcp + "/act");
    assertThat(first.exit()).as(first.err() + Files.readString(log)).isZero();
    assertThat(first.out().strip()).isEqualTo("8388608");
    Result overUnix = tool("nbdinfo", "--size", "nbd+unix:///act?socket=" + socket);
    assertThat(overUnix.out().strip()).as(overUnix.err()).isEqualTo("8388608");
    assertThat(Files.readString(log)).contains("NBD gateway listening on " + tcp + " and unix:" + socket);
  }

  @Test
  void aRoleWithoutCertificatesRefusesToStartUnlessToldInsecure() throws Exception {
    String[][] roles = {{"meta", "--listen", "127.0.0.1:0", "--data-dir", tmp.resolve("m").toString()},
        {"server", "--meta", "127.0.0.1:9", "--listen", "127.0.0.1:0", "--memory", "16M"},
        {"gateway", "--meta", "127.0.0.1:9", "--listen", "127.0.0.1:0"}};
    for (String[] role : roles) {
      ProcessBuilder pb = launcher(role);
      pb.environment().remove("VMD_CERTS_DIR");
      Result r = run(pb, 60, role);
      assertThat(r.exit()).as(role[0]).isNotZero();
      assertThat(r.err().strip().lines()).as(role[0]).hasSize(1).first().asString()
          .startsWith("vmd: no certificates").contains("vmd cert create-ca").contains("--insecure");
    }
    Result both = vmd("meta", "--listen", "127.0.0.1:0", "--data-dir", tmp.resolve("m").toString(), "--certs-dir",
        certs.toString(), "--insecure");
    assertThat(both.err()).contains("choose one");
    // Told --insecure, a voter starts, and says loudly what that means.
    HostPort at = FreePorts.loopback(1).get(0);
    startAndWait(Pattern.compile("control-plane voter on"), "meta", "--insecure", "--listen", at.toString(),
        "--data-dir", tmp.resolve("insecure-meta").toString());
    assertThat(Files.readString(lastLog)).contains("WARNING: this control-plane voter runs --insecure");
  }

  /** A libnbd certificates directory for {@code client} (none: the CA alone, no client certificate). */
  private Path nbdCertificates(String client) throws IOException {
    Path d = Files.createDirectories(tmp.resolve("nbd-" + (client == null ? "none" : client)));
    Files.copy(certs.resolve("ca.crt"), d.resolve("ca-cert.pem"));
    if (client != null) {
      Files.copy(certs.resolve("client." + client + ".crt"), d.resolve("client-cert.pem"));
      Files.copy(certs.resolve("client." + client + ".key"), d.resolve("client-key.pem"));
    }
    return d;
  }

  @Test
  void withTlsVerifyPeerAnNbdClientNeedsItsCertificateAndAGrant() throws Exception {
    String flag = startMeta().toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "16M");
    for (String ns : new String[] {"disk", "other"}) {
      Result r = vmd("ns", "create", ns, "--size", "4M", "--replicas", "1", "--meta", flag);
      assertThat(r.exit()).as(r.err()).isZero();
    }
    String client = "vm-" + Long.toHexString(System.nanoTime());
    Result made = vmd("cert", "create-client", client, "--role", "nbd");
    assertThat(made.exit()).as(made.err()).isZero();
    Matcher gw = startAndWait(Pattern.compile("NBD gateway listening on (\\S+)"), "gateway", "--listen",
        "127.0.0.1:0", "--meta", flag, "--tls-cert", certs.resolve("node.crt").toString(), "--tls-key",
        certs.resolve("node.key").toString(), "--tls-verify-peer", "--metrics", "127.0.0.1:0");
    Matcher metrics = METRICS_AT.matcher(lastLine);
    assertThat(metrics.find()).as(lastLine).isTrue();
    String base = "nbds://" + gw.group(1) + "/";
    String mine = "?tls-certificates=" + nbdCertificates(client);
    // No client certificate: refused in the TLS handshake.
    Result none = tool("nbdinfo", base + "disk?tls-certificates=" + nbdCertificates(null));
    assertThat(none.exit()).as(none.out()).isNotZero();
    // A certificate, but no grant: the export cannot be opened, nor seen in the list.
    Result denied = tool("nbdinfo", base + "disk" + mine);
    assertThat(denied.exit()).as(denied.out()).isNotZero();
    assertThat(denied.err()).contains("opt_go").contains("disk"); // the reason, "not granted", is in the gateway's log
    Result list = tool("nbdinfo", "--list", base + mine);
    assertThat(list.exit()).as(list.err()).isZero();
    assertThat(list.out()).doesNotContain("disk").doesNotContain("other");
    // Granted: opened and listed, the other namespace still not.
    Result grant = vmd("--json", "ns", "grant", "disk", client, "--meta", flag);
    assertThat(shape(grant, NsCommand.Grants.class).grants()).containsExactly(client);
    Result opened = tool("nbdinfo", "--size", base + "disk" + mine);
    assertThat(opened.exit()).as(opened.err()).isZero();
    assertThat(opened.out().strip()).isEqualTo(String.valueOf(4 << 20));
    assertThat(tool("nbdinfo", "--list", base + mine).out()).contains("disk").doesNotContain("other");
    // Revoked: refused again.
    assertThat(vmd("ns", "revoke", "disk", client, "--meta", flag).exit()).isZero();
    assertThat(tool("nbdinfo", base + "disk" + mine).exit()).isNotZero();
    // Refusals are counted for the alert: one failed handshake; each refused option of the two opens
    // without a grant (libnbd asks more than once per open).
    String scraped = scrape(metrics.group(1));
    assertThat(scraped).contains("vmd_auth_failures_total{reason=\"tls\",role=\"gateway\"} 1.0");
    Matcher grants = Pattern.compile("vmd_auth_failures_total\\{reason=\"grant\",role=\"gateway\"} (\\d+)")
        .matcher(scraped);
    assertThat(grants.find()).as(scraped).isTrue();
    assertThat(Integer.parseInt(grants.group(1))).isGreaterThanOrEqualTo(2);
  }

  @Test
  void certificatesMadeByVmdCertSecureEveryRoleAndServeOnlyTheCasClients() throws Exception {
    String certs = tmp.resolve("certs").toString();
    for (String[] c : new String[][] {{"create-ca"}, {"create-node", "127.0.0.1"},
        {"create-client", "admin", "--role", "admin"}, {"create-client", "gw-1", "--role", "gateway"}}) {
      List<String> args = new ArrayList<>(List.of("cert"));
      args.addAll(List.of(c));
      args.addAll(List.of("--certs-dir", certs));
      Result r = vmd(args.toArray(String[]::new));
      assertThat(r.exit()).as(r.err()).isZero();
    }
    String flag = startMeta("--certs-dir", certs).toString();
    startServer("server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "16M", "--certs-dir", certs);
    assertThat(vmd("ns", "create", "disk", "--size", "4M", "--replicas", "1", "--meta", flag, "--certs-dir", certs)
        .exit()).isZero();
    Matcher gw = startAndWait(Pattern.compile("NBD gateway listening on (\\S+)"),
        "gateway", "--listen", "127.0.0.1:0", "--meta", flag, "--certs-dir", certs, "--identity", "gw-1");
    String uri = "nbd://" + gw.group(1) + "/disk";
    byte[] bytes = new byte[1 << 20];
    new Random(5).nextBytes(bytes);
    Path data = Files.write(tmp.resolve("tls.img"), bytes);
    Result copy = tool("nbdcopy", data.toString(), uri);
    assertThat(copy.exit()).as(copy.err()).isZero();
    Path back = tmp.resolve("tls-back.img");
    assertThat(tool("nbdcopy", uri, back.toString()).exit()).isZero();
    assertThat(Arrays.copyOf(Files.readAllBytes(back), bytes.length)).isEqualTo(bytes);
    // The admin's certificate reaches the server; a gateway's may not create namespaces; the suite's
    // certificates (another CA) reach nothing, not even the control plane.
    assertThat(vmd("ns", "info", "disk", "--meta", flag, "--certs-dir", certs, "--json").out())
        .contains("\"state\":\"up\"").contains("\"pages\":256");
    Result gateway = vmd("ns", "create", "mine", "--size", "4M", "--meta", flag, "--certs-dir", certs,
        "--identity", "gw-1");
    assertThat(gateway.exit()).isEqualTo(1);
    assertThat(gateway.err().strip()).isEqualTo("vmd: gateway 'gw-1' may not create namespaces");
    Result foreign = vmd("ns", "info", "disk", "--meta", flag, "--timeout", "2s");
    assertThat(foreign.exit()).isEqualTo(1);
    assertThat(foreign.err()).contains("did not answer");
    Result nobody = vmd("ns", "info", "disk", "--meta", flag, "--certs-dir", certs, "--identity", "nobody");
    assertThat(nobody.exit()).isEqualTo(1);
    assertThat(nobody.err()).contains("client.nobody.crt").contains("vmd cert");
  }

  @Test
  void adviseRecommendsAgileForAMostlySwappedVmAndPostCopyForAWriteHeavyOne() throws Exception {
    Result swapped = vmd("advise", "--memory", "2G", "--wss", "512M", "--dirty-rate", "5000", "--bandwidth", "1Gbit",
        "--resident", "1100M");
    assertThat(swapped.exit()).as(swapped.err()).isZero();
    assertThat(swapped.out()).contains("pre-copy (Xen)").contains("pre-copy (KVM)").contains("recommended: agile");
    Result heavy = vmd("--json", "advise", "--memory", "2G", "--wss", "1G", "--dirty-rate", "50000", "--bandwidth",
        "125MB/s");
    assertThat(heavy.exit()).as(heavy.err()).isZero();
    assertThat(heavy.out()).startsWith("{\"recommended\":\"post-copy\",\"policies\":[{\"policy\":\"post-copy\"")
        .contains("{\"policy\":\"pre-copy (KVM)\",\"time_s\":null");
    AdviseCommand.Advice advice = shape(heavy, AdviseCommand.Advice.class);
    assertThat(advice.recommended()).isEqualTo(advice.policies().get(0).policy());
    Result bad = vmd("advise", "--memory", "1G", "--wss", "2G", "--dirty-rate", "1", "--bandwidth", "1Gbit");
    assertThat(bad.exit()).isEqualTo(1);
    assertThat(bad.err()).contains("working set");
  }

  @Test
  void aKeyedClusterServesOnlyCommandsThatHoldItsKey() throws Exception {
    Path key = tmp.resolve("cluster.key");
    Files.writeString(key, "0123456789abcdef0123456789abcdef\n");
    String a = startMeta().toString();
    startServer("server", "--meta", a, "--listen", "127.0.0.1:0", "--memory", "16M", "--cluster-key-file", key.toString());
    Result without = vmd("ns", "list", "--meta", a);
    assertThat(without.exit()).isEqualTo(1);
    assertThat(without.err()).contains("cluster key").doesNotContain("Exception");
    Result with = vmd("ns", "create", "k1", "--size", "4M", "--meta", a, "--cluster-key-file",
        key.toString());
    assertThat(with.exit()).as(with.err()).isZero();
    Path wrong = tmp.resolve("wrong.key");
    Files.writeString(wrong, "fedcba9876543210fedcba9876543210");
    Result other = vmd("ns", "list", "--meta", a, "--cluster-key-file", wrong.toString());
    assertThat(other.exit()).isEqualTo(1);
    assertThat(other.err()).contains("cluster key");
  }

  @Test
  void withVmdLogFormatJsonEveryLogEventIsOneJsonObject() throws Exception {
    HostPort at = FreePorts.loopback(1).get(0);
    Path log = tmp.resolve("json.log");
    ProcessBuilder pb = launcher("meta", "--listen", at.toString(), "--data-dir", tmp.resolve("json-meta").toString())
        .redirectError(log.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD);
    pb.environment().put("VMD_LOG_FORMAT", "json");
    Process p = pb.start();
    try {
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
          .until(() -> Files.readString(log).contains("control plane voter"));
    } finally {
      p.destroy();
      assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    }
    ObjectMapper json = new ObjectMapper();
    List<String> lines = Files.readAllLines(log).stream().filter(l -> !l.isBlank()).toList();
    assertThat(lines).noneMatch(l -> l.matches("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} .*")); // no text-layout line
    List<JsonNode> events = new ArrayList<>();
    for (String l : lines.stream().filter(l -> l.startsWith("{")).toList()) {
      events.add(json.readTree(l));
    }
    assertThat(events).anySatisfy(e -> {
      assertThat(e.get("level").asText()).isEqualTo("INFO");
      assertThat(e.get("loggerName").asText()).isEqualTo("io.vmd.meta.MetaServer");
      assertThat(e.get("formattedMessage").asText()).contains("control plane voter");
    });
  }

  /**
   * What an operator points Prometheus and Grafana at: every /metrics endpoint passes promtool's
   * checks, the alerting rules load and fire where their unit tests say, and every metric the rules
   * and the dashboard name is one VMD exports.
   */
  @Test
  void everyMetricsEndpointPassesPromtoolAndTheRulesAndDashboardUseRealMetrics() throws Exception {
    String flag = startMeta("--metrics", "127.0.0.1:0").toString();
    List<String> urls = new ArrayList<>();
    Matcher metaAt = METRICS_AT.matcher(lastLine);
    assertThat(metaAt.find()).as(lastLine).isTrue();
    urls.add(metaAt.group(1));
    for (int i = 0; i < 2; i++) {
      urls.add(metricsOf(LISTENING, "server", "--meta", flag, "--listen", "127.0.0.1:0", "--memory", "32M",
          "--metrics", "127.0.0.1:0"));
    }
    assertThat(vmd("ns", "create", "vm1", "--size", "16M", "--replicas", "2", "--meta", flag).exit()).isZero();
    urls.add(metricsOf(Pattern.compile("NBD gateway listening on (\\S+)"), "gateway", "--listen", "127.0.0.1:0",
        "--meta", flag, "--metrics", "127.0.0.1:0"));
    Matcher gw = Pattern.compile("listening on (\\S+) ").matcher(lastLine);
    assertThat(gw.find()).isTrue();
    Path gatewayLog = lastLog;
    // Traffic, so that per-namespace meters and histograms have samples.
    Path data = tmp.resolve("data");
    byte[] bytes = new byte[4 << 20];
    new Random(4).nextBytes(bytes);
    Files.write(data, bytes);
    Result copy = tool("nbdcopy", data.toString(), "nbd://" + gw.group(1) + "/vm1");
    assertThat(copy.exit()).as("%s%nthe gateway's log:%n%s", copy.err(), Files.readString(gatewayLog)).isZero();
    assertThat(tool("nbdcopy", "nbd://" + gw.group(1) + "/vm1", tmp.resolve("back").toString()).exit()).isZero();

    StringBuilder all = new StringBuilder();
    for (String url : urls) {
      String body = scrape(url);
      all.append(body);
      Path file = tmp.resolve("scrape-" + Math.abs(url.hashCode()) + ".txt");
      Files.writeString(file, body);
      Result check = toolWithInput(file, "promtool", "check", "metrics");
      assertThat(check.exit()).as("promtool check metrics of %s:\n%s%s", url, check.out(), check.err()).isZero();
    }
    assertThat(all).contains("vmd_gateway_pages_in_total{").contains("vmd_gateway_budget_used_bytes")
        .contains("vmd_server_free_bytes").contains("vmd_meta_leader 1.0").contains("vmd_meta_namespaces 1.0")
        .contains("vmd_meta_servers{state=\"active\"} 2.0").contains("vmd_meta_leases 1.0");
    for (String role : List.of("meta", "server", "gateway")) {
      assertThat(all).contains("role=\"" + role + "\"");
    }
    assertThat(all).contains("vmd_build_info{").contains("jvm_buffer_memory_used_bytes{id=\"direct\"")
        .contains("vmd_direct_memory_max_bytes").contains("jvm_gc_memory_allocated_bytes_total");
    // Every port answers liveness and readiness; these roles are up and joined.
    for (String url : urls) {
      assertThat(http(url.replace("/metrics", "/healthz"))).isEqualTo("200 ok");
      assertThat(http(url.replace("/metrics", "/readyz"))).isEqualTo("200 ready");
    }
    // A voter whose two peers never come up knows no leader: alive, not ready.
    HostPort lonely = FreePorts.loopback(1).get(0);
    String lonelyUrl = metricsOf(Pattern.compile("control-plane voter on"), "meta", "--listen", lonely.toString(),
        "--peers", lonely + ",127.0.0.1:1,127.0.0.1:2", "--data-dir", tmp.resolve("lonely").toString(),
        "--metrics", "127.0.0.1:0");
    assertThat(http(lonelyUrl.replace("/metrics", "/healthz"))).isEqualTo("200 ok");
    assertThat(http(lonelyUrl.replace("/metrics", "/readyz"))).startsWith("503 not ready: no leader known");

    Path rules = Path.of("..", "ops", "prometheus", "vmd-alerts.yml").toAbsolutePath().normalize();
    Result checked = tool("promtool", "check", "rules", rules.toString());
    assertThat(checked.exit()).as(checked.out() + checked.err()).isZero();
    Result tested = tool("promtool", "test", "rules", rules.resolveSibling("vmd-alerts.test.yml").toString());
    assertThat(tested.exit()).as(tested.out() + tested.err()).isZero();

    Path dashboard = Path.of("..", "ops", "grafana", "vmd-dashboard.json");
    JsonNode d = new ObjectMapper()
        .readTree(dashboard.toFile());
    List<String> exprs = new ArrayList<>();
    d.get("panels").forEach(panel -> {
      if (panel.has("targets")) { // a row has none
        panel.get("targets").forEach(t -> exprs.add(t.get("expr").asText()));
      }
    });
    assertThat(exprs).hasSizeGreaterThan(10);
    Matcher names = Pattern.compile("vmd_[a-z_]+").matcher(Files.readString(rules) + String.join("\n", exprs));
    while (names.find()) {
      assertThat(all.toString()).as("a metric the rules or the dashboard use").contains(names.group() + (
          names.group().endsWith("_bucket") ? "{" : ""));
    }
  }
}
