package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.MiniVmdCluster;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A running guest (TCG) that is writing 320 MiB under a 160 MiB balloon, its swap on a namespace, is
 * live-migrated with post-copy and with Agile's hybrid; at the destination it finishes and checks every
 * page. What it swapped stays in the namespace. With Agile each QEMU has its own gateway (as on two
 * hosts): the namespace changes hands at switch-over, and the source, resumed afterwards by mistake,
 * is refused every write. With post-copy both QEMUs share one gateway.
 */
class QemuMigrationTest {
  private static final long MIB = 1 << 20;
  @TempDir Path tmp;

  @Test
  void postCopyAndAgileMigrationsOfARunningGuestEndWithEveryPageCorrect() throws Exception {
    Path lab = QemuVmTest.vmlab();
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 512 * MIB).start();
         VmdClient client = VmdClient.connect(ClientConfig.of(c.metaAddresses()));
         NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), client,
             new SimpleMeterRegistry());
         VmdClient destClient = VmdClient.connect(ClientConfig.of(c.metaAddresses()), "gateway");
         NbdGateway destGw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), destClient,
             new SimpleMeterRegistry());
         VmdClient orchestrator = VmdClient.connect(ClientConfig.of(c.metaAddresses()), "cli")) {
      for (QemuMigration.Policy policy : new QemuMigration.Policy[] {QemuMigration.Policy.AGILE,
          QemuMigration.Policy.POST_COPY}) {
        String ns = "swap-" + policy.label();
        client.createNamespace(ns, 512 * MIB, 1);
        String append = "console=ttyS0 quiet panic=-1 vmlab.mode=vm vmlab.mb=320 vmlab.avail=200000";
        QemuVm.Spec src = new QemuVm.Spec("src", 512 * MIB, ns, gw.address(), lab.resolve("vmlinuz"),
            lab.resolve("initrd.gz"), append, "tcg", false);
        boolean twoHosts = policy == QemuMigration.Policy.AGILE;
        QemuVm.Spec dst = new QemuVm.Spec("dst", 512 * MIB, ns, twoHosts ? destGw.address() : gw.address(),
            lab.resolve("vmlinuz"),
            lab.resolve("initrd.gz"), append, "tcg", true);
        // The source runs first and its gateway owns the namespace; the destination's stands by.
        try (QemuVm source = QemuVm.start(src, tmp.resolve(policy.label() + "-src"))) {
          source.awaitSerial("VMLAB: swap on", Duration.ofSeconds(90));
          try (QemuVm dest = QemuVm.start(dst, tmp.resolve(policy.label() + "-dst"))) {
            source.balloon(160 * MIB);
            // Mid-way through writing its 320 MiB, swapping: migrate now.
            source.awaitSerial("VMLAB: written 20480", Duration.ofSeconds(120));
            int port = io.vmd.meta.FreePorts.loopback(1).get(0).port();
            long epochBefore = client.namespaceMeta(ns).epoch();
            QemuMigration.Result r = QemuMigration.migrate(source.qmp(), dest.qmp(), policy, "127.0.0.1", port,
                125_000_000L, Duration.ofSeconds(120), m -> { }, twoHosts ? () -> orchestrator.fence(ns) : null);
            System.out.println("QEMU migration: " + r);
            assertThat(r.status()).isEqualTo("completed");
            assertThat(r.postcopyBytes()).as("it really ran in post-copy").isPositive();
            if (policy == QemuMigration.Policy.AGILE) {
              assertThat(r.precopyBytes()).as("one pre-copy pass first").isPositive();
              assertThat(r.postcopyAfterMillis()).isPositive();
            }
            // 512 MiB of guest RAM, of which the swapped part stayed in the namespace.
            assertThat(r.transferredBytes()).isLessThan(512 * MIB);
            assertThat(source.status()).isEqualTo("postmigrate");
            String serial = dest.awaitSerial("VMLAB: PASS", Duration.ofSeconds(150));
            assertThat(serial).contains("memcheck OK: 320 MiB").doesNotContain("Oops").doesNotContain("BUG:")
                .doesNotContain("Kernel panic");
            if (twoHosts) {
              assertThat(r.switchoverMillis()).isNotNegative();
              // The destination's gateway stood by and claimed the namespace with the guest's first write.
              io.vmd.meta.NamespaceMeta after = client.namespaceMeta(ns);
              assertThat(after.owner()).isEqualTo(destClient.ownerId());
              assertThat(after.epoch()).isEqualTo(epochBefore + 2);
              // The source resumed by mistake (split brain): its guest swaps on, and every write is refused.
              double errorsBefore = gw.metrics(ns).errors();
              source.qmp().call("cont", null, Duration.ofSeconds(10));
              org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60))
                  .until(() -> gw.metrics(ns).errors() > errorsBefore);
              assertThat(client.namespaceMeta(ns).owner()).isEqualTo(destClient.ownerId());
              assertThat(client.namespaceMeta(ns).epoch()).isEqualTo(epochBefore + 2);
            }
          }
        }
      }
    }
  }
}
