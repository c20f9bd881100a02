package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.MiniVmdCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real QEMU guest (TCG here) whose swap disk is a namespace reached by QEMU's own NBD client through
 * the gateway, driven over QMP: ballooned to 160 MiB, it writes and checks 192 MiB, so its kernel
 * swaps into the cluster and back. The guest is benchmarks/vmlab's kernel and initramfs.
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
  void aGuestSwapsIntoItsNamespaceUnderItsBalloonAndEveryPageComesBack() throws Exception {
    Path lab = vmlab();
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 512 * MIB).start();
         VmdClient client = VmdClient.connect(ClientConfig.of(c.metaAddresses()));
         NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), client,
             new SimpleMeterRegistry())) {
      int id = client.createNamespace("vm1-swap", 512 * MIB, 2).id();
      QemuVm.Spec spec = new QemuVm.Spec("vm1", 512 * MIB, "vm1-swap", gw.address(), lab.resolve("vmlinuz"),
          lab.resolve("initrd.gz"), "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.mb=192 vmlab.avail=200000",
          "tcg", false);
      try (QemuVm vm = QemuVm.start(spec, tmp.resolve("vm1"))) {
        assertThat(vm.qmp().greeting().path("QMP").path("version").path("qemu").path("major").asInt()).isPositive();
        vm.awaitSerial("VMLAB: swap on /dev/vda", Duration.ofSeconds(90));
        assertThat(vm.status()).isEqualTo("running");
        // QEMU refusing a command is a clear error, and the connection goes on (the guest powers off after its check).
        assertThatThrownBy(() -> vm.qmp().call("no-such-command", null, Duration.ofSeconds(5)))
            .isInstanceOf(QmpException.class).hasMessageContaining("CommandNotFound");
        assertThatThrownBy(() -> vm.qmp().call("balloon", Map.of("value", "lots"), Duration.ofSeconds(5)))
            .isInstanceOf(QmpException.class).hasMessageContaining("GenericError");
        vm.balloon(160 * MIB);
        vm.qmp().awaitEvent("BALLOON_CHANGE", e -> e.data().path("actual").asLong() <= 170 * MIB,
            Duration.ofSeconds(60));
        assertThat(vm.balloonActual()).hasValueSatisfying(a -> assertThat(a).isLessThanOrEqualTo(170 * MIB));
        String serial = vm.awaitSerial("VMLAB: PASS", Duration.ofSeconds(150));
        assertThat(serial).contains("memcheck OK: 192 MiB").doesNotContain("Oops").doesNotContain("BUG:")
            .doesNotContain("Kernel panic");
        Matcher out = Pattern.compile("pswpout (\\d+)").matcher(serial);
        assertThat(out.find()).isTrue();
        assertThat(Long.parseLong(out.group(1))).as("pages swapped out into the namespace").isGreaterThan(10_000);
        long stored = 0;
        for (int i = 0; i < c.size(); i++) {
          stored += c.server(i).store().pageCount(id);
        }
        assertThat(stored).as("swapped pages held by the servers, two copies each").isGreaterThan(10_000);
      }
      // A destination waits for its migration (-incoming defer) with the same swap disk attached.
      QemuVm.Spec incoming = new QemuVm.Spec("vm1-dest", 512 * MIB, "vm1-swap", gw.address(), lab.resolve("vmlinuz"),
          lab.resolve("initrd.gz"), "console=ttyS0", "tcg", true);
      try (QemuVm dest = QemuVm.start(incoming, tmp.resolve("vm1-dest"))) {
        assertThat(dest.status()).isEqualTo("inmigrate");
        assertThat(Files.exists(dest.dir().resolve(QemuVm.QMP))).isTrue();
      }
    }
  }
}
