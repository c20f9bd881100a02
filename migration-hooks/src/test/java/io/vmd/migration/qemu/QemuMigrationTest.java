package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.Pem;
import io.vmd.meta.FreePorts;
import io.vmd.meta.NamespaceMeta;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.MiniVmdCluster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A running guest (TCG) whose workload keeps 32 MiB hot of the 256 MiB it uses (every operation checks
 * a page and rewrites it with a new version), its swap on a namespace, is live-migrated; at the
 * destination it runs on and then checks every page, including that none is older than its last write.
 * <ul>
 *   <li>Agile: the balloon leaves it 160 MiB, so the rest swaps to the namespace and stays there; each
 *       QEMU has its own gateway (as on two hosts) and the namespace changes hands at switch-over —
 *       the source, resumed afterwards by mistake, is refused every write. Under TCG Agile starts in
 *       post-copy (QEMU loses guest writes in a pre-copy phase under TCG), and pre-copy is refused.
 *   <li>Post-copy of the same ballooned guest, both QEMUs on one gateway.
 *   <li>Pre-copy of the guest as it runs without VMD (no balloon, everything resident), allowed
 *       explicitly to measure it: it moves far more than Agile. Its memory is not checked (under TCG it
 *       arrives corrupted; see benchmarks/README.md).
 * </ul>
 */
class QemuMigrationTest {
  private static final long MIB = 1 << 20;
  @TempDir Path tmp;

  private VmdClient client;
  private NbdGateway gw;
  private VmdClient destClient;
  private NbdGateway destGw;
  private VmdClient orchestrator;
  private Path lab;

  @Test
  void agileAndPostCopyEndWithEveryPageCorrectAndMoveFarLessThanPreCopyWithoutVmd() throws Exception {
    lab = QemuVmTest.vmlab();
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 512 * MIB).start();
         VmdClient sourceHost = VmdClient.connect(KitClients.config(c));
         // Each host's QEMUs reach its gateway through a Unix socket, as the host agent serves them.
         NbdGateway sourceGw = unixGateway(sourceHost, "source");
         VmdClient destHost = VmdClient.connect(KitClients.config(c), "gateway");
         NbdGateway destinationGw = unixGateway(destHost, "destination");
         VmdClient cli = VmdClient.connect(KitClients.config(c), "cli")) {
      client = sourceHost;
      gw = sourceGw;
      destClient = destHost;
      destGw = destinationGw;
      orchestrator = cli;
      QemuMigration.Result agile = agileBetweenTwoGateways();
      QemuMigration.Result post = migrate("post-copy", QemuMigration.Policy.POST_COPY, true, false, true);
      assertThat(post.postcopyBytes()).as("it really ran in post-copy").isPositive();
      assertThat(post.transferredBytes()).as("the swapped part stayed in the namespace").isLessThan(512 * MIB);
      // Pre-copy under TCG, not forced: allowed because RAM is sized around QEMU 7.2's bug, and every page verified.
      QemuMigration.Result pre = migrate("pre-copy", QemuMigration.Policy.PRE_COPY, false, false, true);
      assertThat(pre.totalMillis()).as("from QEMU's events").isPositive();
      System.out.printf("agile / pre-copy without VMD: data %.2f, time %.2f%n",
          (double) agile.transferredBytes() / pre.transferredBytes(), (double) agile.totalMillis() / pre.totalMillis());
      assertThat(pre.transferredBytes()).as("pre-copy without VMD moves what the guest holds")
          .isGreaterThan(256 * MIB);
      assertThat(agile.transferredBytes()).as("Agile moves measurably less").isLessThan(pre.transferredBytes() * 3 / 4);
    }
  }

  private QemuMigration.Result agileBetweenTwoGateways() throws Exception {
    String ns = "swap-agile";
    client.namespaces().create(ns, 512 * MIB, 1);
    try (QemuVm source = QemuVm.start(spec("src", ns, gw, true, false), tmp.resolve("agile-src"))) {
      source.awaitSerial("VMLAB: swap on", Duration.ofSeconds(90));
      // The source's gateway owns the namespace; the destination's, opened after, stands by.
      // The stream runs over TLS, each end checking the other's certificate: a source whose CA the
      // destination does not know is refused before anything moves, and the VM runs on.
      Path good = tlsDir("good", CertificateAuthority.create(Duration.ofDays(1)));
      Path stranger = tlsDir("stranger", CertificateAuthority.create(Duration.ofDays(1)));
      try (QemuVm refused = QemuVm.start(spec("dst-refused", ns, destGw, true, true), tmp.resolve("agile-refused"))) {
        int port = FreePorts.loopback(1).get(0).port();
        assertThatThrownBy(() -> QemuMigration.newBuilder(source.qmp(), refused.qmp())
            .policy(QemuMigration.Policy.AGILE).to("127.0.0.1", port).bandwidth(125_000_000L)
            .timeout(Duration.ofSeconds(60)).tls(stranger.resolve("client"), good.resolve("server")).run())
            .isInstanceOf(QmpException.class);
        assertThat(source.status()).isEqualTo("running");
      }
      try (QemuVm dest = QemuVm.start(spec("dst", ns, destGw, true, true), tmp.resolve("agile-dst"))) {
        source.balloon(160 * MIB);
        running(source);
        int port = FreePorts.loopback(1).get(0).port();
        long epochBefore = client.namespaces().get(ns).epoch();
        QemuMigration.Result r = QemuMigration.newBuilder(source.qmp(), dest.qmp())
            .policy(QemuMigration.Policy.AGILE).to("127.0.0.1", port).bandwidth(125_000_000L)
            .timeout(Duration.ofSeconds(120)).switchOver(() -> orchestrator.namespaces().fence(ns))
            .tls(good.resolve("client"), good.resolve("server")).run();
        System.out.println("QEMU migration: " + r);
        assertThat(r.status()).isEqualTo("completed");
        // QEMU 7.2 under TCG, with RAM sized off 256 KiB multiples: the true hybrid, one pre-copy pass first.
        assertThat(r.precopyPassSkipped()).as("the pre-copy pass ran").isFalse();
        assertThat(r.postcopyAfterMillis()).isPositive();
        assertThat(r.precopyBytes()).isPositive();
        assertThat(r.postcopyBytes()).isPositive();
        assertThat(r.transferredBytes()).as("the swapped part stayed in the namespace").isLessThan(512 * MIB);
        assertThat(r.switchoverMillis()).isNotNegative();
        assertThat(r.guestDowntimeMillis()).as("source STOP to destination RESUME").isNotNegative()
            .isGreaterThanOrEqualTo(r.switchoverMillis());
        assertThat(source.status()).isEqualTo("postmigrate");
        verified(dest);
        // The destination's gateway stood by and claimed the namespace with the guest's first write.
        NamespaceMeta after = client.namespaces().get(ns);
        assertThat(after.owner()).isEqualTo(destClient.ownerId());
        assertThat(after.epoch()).isEqualTo(epochBefore + 2);
        // The source resumed by mistake (split brain): its guest swaps on, and every write is refused.
        double errorsBefore = gw.metrics(ns).errors();
        source.qmp().call("cont", null, Duration.ofSeconds(10));
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> gw.metrics(ns).errors() > errorsBefore);
        assertThat(client.namespaces().get(ns).owner()).isEqualTo(destClient.ownerId());
        assertThat(client.namespaces().get(ns).epoch()).isEqualTo(epochBefore + 2);
        return r;
      }
    }
  }

  /** One migration between two QEMUs on the source's gateway. */
  private QemuMigration.Result migrate(String ns, QemuMigration.Policy policy, boolean ballooned,
      boolean allowTcgPreCopy, boolean verify) throws Exception {
    client.namespaces().create(ns, 512 * MIB, 1);
    try (QemuVm source = QemuVm.start(spec("src", ns, gw, ballooned, false), tmp.resolve(ns + "-src"));
         QemuVm dest = QemuVm.start(spec("dst", ns, gw, ballooned, true), tmp.resolve(ns + "-dst"))) {
      source.awaitSerial("VMLAB: swap on", Duration.ofSeconds(90));
      if (ballooned) {
        source.balloon(160 * MIB);
      }
      running(source);
      int port = FreePorts.loopback(1).get(0).port();
      QemuMigration.Result r = QemuMigration.newBuilder(source.qmp(), dest.qmp()).policy(policy)
          .to("127.0.0.1", port).bandwidth(125_000_000L).timeout(Duration.ofSeconds(120))
          .allowTcgPreCopy(allowTcgPreCopy).run();
      System.out.println("QEMU migration: " + r);
      assertThat(r.status()).isEqualTo("completed");
      if (verify) {
        verified(dest);
      }
      return r;
    }
  }

  /** Migrations start a few seconds into the workload: after its third progress line. */
  private static void running(QemuVm source) throws Exception {
    source.awaitSerial("VMLAB: hotset running", Duration.ofSeconds(120));
    Awaitility.await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200))
        .until(() -> source.serial().split("VMLAB: t=", -1).length > 3);
  }

  /**
   * QEMU's x509 credentials from {@code ca}: DIR/server (ca-cert.pem, server-cert.pem for 127.0.0.1 and
   * its key) for the destination, DIR/client (ca-cert.pem, client-cert.pem and key) for the source.
   */
  private Path tlsDir(String name, CertificateAuthority ca) throws IOException {
    Path dir = tmp.resolve("tls-" + name);
    CertificateAuthority.Issued server = ca.issueNode(List.of("127.0.0.1"), Duration.ofDays(1));
    CertificateAuthority.Issued client = ca.issueNode(List.of("127.0.0.1"), Duration.ofDays(1));
    for (String end : List.of("server", "client")) {
      CertificateAuthority.Issued c = end.equals("server") ? server : client;
      Path d = Files.createDirectories(dir.resolve(end));
      Files.writeString(d.resolve("ca-cert.pem"), Pem.of(ca.certificate()));
      Files.writeString(d.resolve(end + "-cert.pem"), Pem.of(c.certificate()));
      Files.writeString(d.resolve(end + "-key.pem"), Pem.of(c.key()));
    }
    return dir;
  }

  private NbdGateway unixGateway(VmdClient host, String name) throws InterruptedException {
    GatewayConfig onSocket = new GatewayConfig(null, null).withUnixSocket(tmp.resolve(name).resolve("nbd.sock"));
    return NbdGateway.start(onSocket, host, new SimpleMeterRegistry());
  }

  private QemuVm.Spec spec(String name, String ns, NbdGateway via, boolean ballooned, boolean incoming) {
    String append = "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.work=hotset vmlab.mb=256 vmlab.hot=32"
        + " vmlab.secs=12 vmlab.rate=8000" + (ballooned ? " vmlab.avail=100000" : "");
    return new QemuVm.Spec(name, 512 * MIB, ns, NbdEndpoint.unix(via.unixSocket()), lab.resolve("vmlinuz"),
        lab.resolve("initrd.gz"), append, "tcg", incoming);
  }

  private static void verified(QemuVm dest) throws Exception {
    String serial = dest.awaitSerial("VMLAB: hotset ", Duration.ofSeconds(150));
    assertThat(serial).contains("hotset OK: 256 MiB").doesNotContain("Oops").doesNotContain("BUG:")
        .doesNotContain("Kernel panic");
  }
}
