package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.migration.wss.WorkingSetTracker;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.MiniVmdCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real QEMU guest (TCG here) whose swap disk is a namespace reached by QEMU's own NBD client through
 * the gateway, driven over QMP. Its workload keeps 32 MiB hot of the 256 MiB it uses; the Agile
 * paper's working-set loop, fed by the gateway's page-ins for the namespace, turns the balloon down
 * until the guest pages in more than τ and settles between the hot set and the guest's memory. The
 * cold pages go to the namespace (two copies each), and every page checks out. The guest is
 * benchmarks/vmlab's kernel and initramfs. QEMU reaches the gateway as an operator runs it: NBD over
 * TLS, the gateway verifying QEMU's certificate (role nbd) and its grant of the namespace.
 */
class QemuVmTest {
  private static final long MIB = 1 << 20;
  @TempDir Path tmp;

  static Path vmlab() throws Exception {
    Path build = Path.of(System.getProperty("user.dir")).resolve("../benchmarks/vmlab/build.sh").normalize();
    Process p = new ProcessBuilder(build.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String dir = new String(p.getInputStream().readAllBytes()).strip();
    assertThat(p.waitFor()).as("vmlab build (needs root for apt-get the first time)").isZero();
    return Path.of(dir);
  }

  @Test
  void theWorkingSetTrackerBalloonsAGuestDownToItsHotSetAndItsColdPagesSwapIntoTheNamespace() throws Exception {
    Path lab = vmlab();
    CertsDir certs = new CertsDir(tmp.resolve("certs"));
    certs.makeCluster(List.of("127.0.0.1"), Duration.ofDays(1), List.of(new Identity("wss-qemu", Role.NBD)));
    Path creds = Files.createDirectories(tmp.resolve("qemu-tls"));
    Files.copy(certs.caCert(), creds.resolve("ca-cert.pem"));
    Files.copy(certs.clientCert("wss-qemu"), creds.resolve("client-cert.pem"));
    Files.copy(certs.clientKey("wss-qemu"), creds.resolve("client-key.pem"));
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 512 * MIB).start();
         VmdClient client = VmdClient.connect(KitClients.config(c));
         NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
             .withTls(certs.nodeCert(), certs.nodeKey()).withVerifyPeer(certs.caCert()), client,
             new SimpleMeterRegistry())) {
      int id = client.namespaces().create("wss-swap", 512 * MIB, 2).id();
      client.namespaces().grant("wss-swap", "wss-qemu", true);
      QemuVm.Spec spec = new QemuVm.Spec("wss", 512 * MIB, "wss-swap", NbdEndpoint.tcp(gw.address()), lab.resolve("vmlinuz"),
          lab.resolve("initrd.gz"), "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.work=hotset vmlab.mb=256"
              + " vmlab.hot=32 vmlab.secs=24 vmlab.rate=8000", "tcg", false, creds);
      try (QemuVm vm = QemuVm.start(spec, tmp.resolve("wss"))) {
        assertThat(vm.qmp().greeting().path("QMP").path("version").path("qemu").path("major").asInt()).isPositive();
        vm.awaitSerial("VMLAB: swap on /dev/vda", Duration.ofSeconds(90));
        assertThat(vm.status()).isEqualTo("running");
        // QEMU refusing a command is a clear error, and the connection goes on.
        assertThatThrownBy(() -> vm.qmp().call("no-such-command", null, Duration.ofSeconds(5)))
            .isInstanceOf(QmpException.class).hasMessageContaining("CommandNotFound");
        assertThatThrownBy(() -> vm.qmp().call("balloon", Map.of("value", "lots"), Duration.ofSeconds(5)))
            .isInstanceOf(QmpException.class).hasMessageContaining("GenericError");
        vm.awaitSerial("VMLAB: hotset running", Duration.ofSeconds(120));
        BalloonReservation balloon = new BalloonReservation(vm.qmp(), 512 * MIB, 64 * MIB);
        // The paper's α, β and τ; steps of half a second rather than 2 s, so the test is short.
        WorkingSetTracker.Settings settings = new WorkingSetTracker.Settings(
            0.95, 1.03, 4096, Duration.ofMillis(500), Duration.ofSeconds(5), 64 * MIB, 512 * MIB);
        long lowest = Long.MAX_VALUE;
        long grew = 0;
        try (WorkingSetTracker tracker = new WorkingSetTracker(
            () -> (long) gw.metrics("wss-swap").pagesIn() * 4096, balloon, settings)) {
          long previous = balloon.target();
          for (int i = 0; i < 34 && vm.alive(); i++) {
            Thread.sleep(500);
            long r = tracker.step();
            System.out.printf("tracker: page-ins %.0f B/s, reservation %d MiB%n", tracker.lastSwapRate(), r >> 20);
            lowest = Math.min(lowest, r);
            grew += r > previous ? 1 : 0;
            previous = r;
          }
        }
        assertThat(vm.balloonActual()).as("the balloon driver follows").isPresent();
        String serial = vm.awaitSerial("VMLAB: PASS", Duration.ofSeconds(180));
        assertThat(serial).contains("hotset OK: 256 MiB").doesNotContain("Oops").doesNotContain("BUG:")
            .doesNotContain("Kernel panic");
        assertThat(lowest).as("the reservation came down from the guest's 512 MiB").isLessThan(320 * MIB)
            .as("but not below the floor").isGreaterThanOrEqualTo(64 * MIB);
        assertThat(grew).as("page-ins above τ made it grow again").isPositive();
        Matcher out = Pattern.compile("pswpout (\\d+)").matcher(serial);
        assertThat(out.find()).isTrue();
        long swappedOut = Long.parseLong(out.group(1));
        assertThat(swappedOut).as("pages swapped out into the namespace").isGreaterThan(5_000);
        long stored = 0;
        for (int i = 0; i < c.size(); i++) {
          stored += c.server(i).store().pageCount(id);
        }
        assertThat(stored).as("swapped pages held by the servers, two copies each").isGreaterThan(2 * 5_000);
      }
      // A destination waits for its migration (-incoming defer) with the same swap disk attached.
      QemuVm.Spec incoming = new QemuVm.Spec("wss-dest", 512 * MIB, "wss-swap", NbdEndpoint.tcp(gw.address()), lab.resolve("vmlinuz"),
          lab.resolve("initrd.gz"), "console=ttyS0", "tcg", true, creds);
      try (QemuVm dest = QemuVm.start(incoming, tmp.resolve("wss-dest"))) {
        assertThat(dest.status()).isEqualTo("inmigrate");
        assertThat(Files.exists(dest.dir().resolve(QemuVm.QMP))).isTrue();
      }
    }
  }
}
