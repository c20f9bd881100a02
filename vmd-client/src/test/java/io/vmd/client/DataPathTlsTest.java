package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.server.LocalCluster;
import io.vmd.server.MiniVmdCluster;
import java.io.File;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS between clients and servers: only a client certificate of the cluster's CA, of a client
 * role, reaches a server; and what a client writes does not cross the wire in the clear (tcpdump on
 * lo, with a plaintext cluster as the control that shows the same check finds the page).
 */
class DataPathTlsTest {
  private static final Duration DAY = Duration.ofDays(1);
  private static final long MIB = 1 << 20;
  @TempDir Path tmp;

  private final CertificateAuthority ca = CertificateAuthority.create(DAY);
  private final CertificateAuthority.Issued node = ca.issueNode(List.of("127.0.0.1"), DAY);

  private ClusterTls client(CertificateAuthority by, String name, Role role) {
    CertificateAuthority.Issued c = by.issueClient(new Identity(name, role), DAY);
    return ClusterTls.of(by.certificate(), c.certificate(), c.key());
  }

  private MiniVmdCluster secureCluster() throws InterruptedException {
    LocalCluster.Builder<MiniVmdCluster> b = MiniVmdCluster.builder().servers(2, 16 * MIB)
        .tls(ClusterTls.of(ca.certificate(), node.certificate(), node.key()));
    return b.start();
  }

  private static boolean anyUp(VmdClient c) {
    return c.cluster().servers().stream().anyMatch(ServerInfo::up);
  }

  @Test
  void aGatewayCertificateOfTheCaIsServedAndNobodyElseIs() throws Exception {
    try (MiniVmdCluster cluster = secureCluster()) {
      ClientConfig base = ClientConfig.of(cluster.metaAddresses()).withConnectTimeout(Duration.ofSeconds(2));
      try (VmdClient admin = VmdClient.connect(base.withTls(client(ca, "ops", Role.ADMIN)))) {
        admin.namespaces().create("tls", 4 * MIB, 2);
      }
      byte[] data = new byte[64 * 4096];
      new Random(3).nextBytes(data);
      try (VmdClient gw = VmdClient.connect(base.withTls(client(ca, "gw-1", Role.GATEWAY)))) {
        assertThat(gw.cluster().servers()).allMatch(ServerInfo::up);
        Namespace ns = gw.attach("tls", VmdClient.Access.CLAIM);
        ns.writeSync(0, data);
        assertThat(ns.readSync(0, 64)).isEqualTo(data);
      }
      // A hypervisor host's agent, with its node certificate of role host, does what a gateway does.
      CertificateAuthority.Issued agent = ca.issueNode(List.of("hv-1", "127.0.0.1"), Role.HOST, DAY);
      assertThat(Identity.of(agent.certificate())).isEqualTo(new Identity("hv-1", Role.HOST));
      try (VmdClient host = VmdClient.connect(
          base.withTls(ClusterTls.of(ca.certificate(), agent.certificate(), agent.key())))) {
        assertThat(host.ownerId()).startsWith("hv-1/");
        Namespace ns = host.attach("tls", VmdClient.Access.CLAIM);
        assertThat(ns.readSync(0, 64)).isEqualTo(data);
        ns.writeSync(0, new byte[4096]);
      }
      assertThatThrownBy(() -> ca.issueNode(List.of("x"), Role.ADMIN, DAY)).hasMessageContaining("server or a host");
      // Without a certificate, or with another CA's, not even the control plane answers.
      ClientConfig quick = base.withRequestTimeout(Duration.ofSeconds(2));
      for (ClientConfig c : List.of(quick, quick.withTls(client(CertificateAuthority.create(DAY), "gw-1", Role.GATEWAY)))) {
        assertThatThrownBy(() -> VmdClient.connect(c).close()).isInstanceOf(VmdException.class)
            .hasMessageContaining("did not answer");
      }
      // Plaintext straight at a server's port: refused in the handshake.
      try (Socket s = new Socket("127.0.0.1", cluster.address(0).port())) {
        s.setSoTimeout(5000);
        s.getOutputStream().write(new byte[64]);
        assertThat(s.getInputStream().read(new byte[64])).isLessThanOrEqualTo(7);
      } catch (IOException e) {
        // reset by the server: refused as well
      }
      // A server's certificate reads the view, but servers take no connection from a server role.
      try (VmdClient c = VmdClient.connect(base.withTls(client(ca, "mem-9", Role.SERVER)))) {
        Thread.sleep(500);
        assertThat(anyUp(c)).as("servers reached with a server's certificate").isFalse();
      }
      double tls = 0;
      double role = 0;
      for (int i = 0; i < cluster.size(); i++) {
        var r = cluster.registry(i);
        var t = r.find("vmd.server.connections.refused").tag("reason", "tls").counter();
        var ro = r.find("vmd.server.connections.refused").tag("reason", "role").counter();
        tls += t == null ? 0 : t.count();
        role += ro == null ? 0 : ro.count();
      }
      assertThat(tls).as("handshakes refused: plaintext").isPositive();
      assertThat(role).as("a server's certificate used as a client").isPositive();
    }
  }

  @Test
  void aWrittenPageIsNotOnTheWireInTheClear() throws Exception {
    byte[] page = new byte[4096];
    new Random(7).nextBytes(page);
    // The control: on a plaintext cluster the same capture finds the page, so the check can fail.
    try (MiniVmdCluster plain = MiniVmdCluster.builder().insecure().servers(1, 16 * MIB).start()) {
      assertThat(capture(plain, ClientConfig.of(plain.metaAddresses()), page, "plain")).isTrue();
    }
    try (MiniVmdCluster secure = MiniVmdCluster.builder().servers(1, 16 * MIB)
        .tls(ClusterTls.of(ca.certificate(), node.certificate(), node.key())).start()) {
      ClientConfig cfg = ClientConfig.of(secure.metaAddresses()).withTls(client(ca, "ops", Role.ADMIN));
      assertThat(capture(secure, cfg, page, "tls")).isFalse();
    }
  }

  /** Writes {@code page} while tcpdump records the server's port on lo; whether its bytes were seen. */
  private boolean capture(MiniVmdCluster cluster, ClientConfig cfg, byte[] page, String name) throws Exception {
    Path pcap = tmp.resolve(name + ".pcap");
    Path log = tmp.resolve(name + ".log");
    Process dump = new ProcessBuilder("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", pcap.toString(), "tcp", "port",
        String.valueOf(cluster.address(0).port())).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    try {
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (!Files.readString(log).contains("listening on") && System.nanoTime() < deadline) {
        assertThat(dump.isAlive()).as("tcpdump: %s", Files.readString(log)).isTrue();
        Thread.sleep(50);
      }
      try (VmdClient c = VmdClient.connect(cfg)) {
        c.namespaces().create("cap", MIB, 1);
        Namespace ns = c.attach("cap", true);
        ns.writeSync(5, page);
        assertThat(ns.readSync(5, 1)).isEqualTo(page);
      }
      Thread.sleep(300);
    } finally {
      dump.destroy();
      dump.waitFor(10, TimeUnit.SECONDS);
    }
    byte[] wire = Files.readAllBytes(pcap);
    assertThat(wire.length).as("tcpdump wrote %s", new File(pcap.toString())).isGreaterThan(1000);
    return TestBytes.indexOf(wire, Arrays.copyOfRange(page, 1000, 1064)) >= 0;
  }
}
