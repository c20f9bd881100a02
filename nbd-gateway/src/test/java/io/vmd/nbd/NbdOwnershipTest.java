package io.vmd.nbd;

import static io.vmd.nbd.GatewayFixture.ok;
import static io.vmd.nbd.GatewayFixture.randomFile;
import static io.vmd.nbd.GatewayFixture.readBack;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.meta.ServerStatus;
import io.vmd.server.MiniVmdCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ownership and membership as NBD clients meet them: a second gateway standing by until the namespace
 * is handed to it, a server that hangs while a new gateway attaches, and a server drained while the
 * device is in use.
 */
class NbdOwnershipTest {
  private static final long MIB = 1 << 20;
  @TempDir Path dir;
  private GatewayFixture fx;

  @AfterEach
  void stop() {
    if (fx != null) {
      fx.close();
    }
  }

  @Test
  void aSecondGatewayStandsByAndWritesOnTheSameConnectionOnceTheNamespaceIsHandedOver() throws Exception {
    fx = new GatewayFixture(2, 64 * MIB);
    fx.client.namespaces().create("vm1", 8 * MIB, 2);
    Path first = randomFile(dir, "first.img", 1, 8 * (int) MIB);
    ok(dir, "nbdcopy", first.toString(), fx.uri("vm1"));
    try (VmdClient other = VmdClient.connect(KitClients.config(fx.cluster), "gateway");
        NbdGateway standby = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), other,
            new SimpleMeterRegistry());
        VmdClient orchestrator = VmdClient.connect(KitClients.config(fx.cluster), "cli")) {
      String standbyUri = "nbd://" + standby.address() + "/vm1";
      GatewayFixture.Result info = ok(dir, "nbdinfo", standbyUri);
      // Writable as offered (a migration's destination must attach its disk read-write before the
      // hand-off), but the owner keeps the namespace.
      assertThat(info.out()).contains("is_read_only: false").contains("export-size: " + 8 * MIB);
      Path second = randomFile(dir, "second.img", 2, 8 * (int) MIB);
      ok(dir, "nbdcopy", second.toString(), fx.uri("vm1"));
      byte[] secondBytes = Files.readAllBytes(second);
      try (RawNbdClient waiting = new RawNbdClient("127.0.0.1", standby.address().port())) {
        waiting.go("vm1");
        assertThat(waiting.transmissionFlags & NbdProtocol.FLAG_READ_ONLY).isZero();
        byte[] page = new byte[4096];
        Arrays.fill(page, (byte) 0x5A);
        // A write while the owner holds the namespace waits for a hand-over, is refused, and lands nowhere.
        long sent = System.nanoTime();
        waiting.request(NbdProtocol.CMD_WRITE, 0, 1, 0, page.length, page);
        waiting.flush();
        assertThat(waiting.reply(0).error()).isEqualTo(NbdProtocol.EPERM);
        assertThat(System.nanoTime() - sent).as("it waited").isGreaterThanOrEqualTo(NbdSession.STANDBY_WAIT_NANOS);
        assertThat(readBack(dir, fx.uri("vm1"), "still.img")).isEqualTo(secondBytes);
        // It reads what the owner wrote after it attached.
        waiting.request(NbdProtocol.CMD_READ, 0, 2, 4096, 4096, null);
        waiting.flush();
        assertThat(waiting.reply(4096).data()).isEqualTo(Arrays.copyOfRange(secondBytes, 4096, 8192));
        assertThat(other.namespaces().get("vm1").owner()).isEqualTo(fx.client.ownerId());

        // The hand-off (a migration's switch-over): the owner is fenced and nobody owns it until the
        // waiting connection's write claims it, on the same connection. A write sent a moment before
        // the fence (the destination resumed first) waits for it, rather than fail.
        waiting.request(NbdProtocol.CMD_WRITE, 0, 3, 0, page.length, page);
        waiting.flush();
        long fencing = System.nanoTime();
        long epoch = orchestrator.namespaces().fence("vm1").epoch();
        System.out.printf("fence took %d ms%n", (System.nanoTime() - fencing) / 1_000_000);
        assertThat(waiting.reply(0).error()).as("the write sent before the fence").isZero();
        assertThat(other.namespaces().get("vm1").owner()).isEqualTo(other.ownerId());
        assertThat(other.namespaces().get("vm1").epoch()).isEqualTo(epoch + 1);
        // The fenced gateway's writes are refused from now on; what the new owner wrote stays.
        GatewayFixture.Result stale = GatewayFixture.run(dir, "nbdcopy", first.toString(), fx.uri("vm1"));
        assertThat(stale.exit()).as("the fenced gateway's write").isNotZero();
        byte[] expected = secondBytes.clone();
        System.arraycopy(page, 0, expected, 0, page.length);
        assertThat(readBack(dir, standbyUri, "after.img")).isEqualTo(expected);
      }
    }
    // Once the standby's gateway is gone too, a new gateway writes (it replaces a dead one as before).
    try (VmdClient next = VmdClient.connect(KitClients.config(fx.cluster), "gateway");
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), next,
            new SimpleMeterRegistry())) {
      String uri = "nbd://" + gw.address() + "/vm1";
      ok(dir, "nbdcopy", first.toString(), uri);
      assertThat(readBack(dir, uri, "again.img")).isEqualTo(Files.readAllBytes(first));
    }
  }

  @Test
  void aServerFrozenWhileANewGatewayAttachesGivesReadErrorsNeverZerosThenEveryByte() throws Exception {
    fx = new GatewayFixture(MiniVmdCluster.builder().servers(2, 64 * MIB).start());
    fx.client.namespaces().create("vm2", 16 * MIB, 1);
    Path data = randomFile(dir, "data.img", 3, 16 * (int) MIB);
    ok(dir, "nbdcopy", data.toString(), fx.uri("vm2"));
    fx.gateway.close();
    fx.client.close();
    fx.cluster.freeze(1);
    try (VmdClient next = VmdClient.connect(KitClients.config(fx.cluster)
            .withAttachWait(Duration.ofSeconds(1)).withDownAfter(Duration.ofSeconds(1)), "gateway");
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), next,
            new SimpleMeterRegistry())) {
      String uri = "nbd://" + gw.address() + "/vm2";
      GatewayFixture.Result frozen = GatewayFixture.run(dir, "nbdcopy", uri, dir.resolve("partial.img").toString());
      assertThat(frozen.exit()).as("a read of pages only the frozen server holds fails; it is never zeros")
          .isNotZero();
      assertThat(frozen.err()).containsIgnoringCase("input/output error");
      fx.cluster.thaw(1);
      Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> gw.metrics("vm2") != null
          && next.namespaces().get("vm2") != null && resolved(gw));
      assertThat(readBack(dir, uri, "whole.img")).isEqualTo(Files.readAllBytes(data));
      assertThat(fx.storedPages(next.namespaces().get("vm2").record().id())).as("nothing was deleted").isEqualTo(16 * 256);
    }
  }

  private static boolean resolved(NbdGateway gw) {
    Export e = gw.exports().peek("vm2");
    return e != null && e.namespace.complete();
  }

  @Test
  void aServerDrainedWhileTheDeviceIsInUseEndsEmptyAndEveryByteStaysReadable() throws Exception {
    fx = new GatewayFixture(3, 64 * MIB);
    fx.client.namespaces().create("vm3", 16 * MIB, 2);
    try (NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
        .withRereplication(Duration.ofMillis(500), 100_000), fx.client, new SimpleMeterRegistry())) {
      String uri = "nbd://" + gw.address() + "/vm3";
      Path data = randomFile(dir, "data3.img", 4, 16 * (int) MIB);
      ok(dir, "nbdcopy", data.toString(), uri);
      int id = fx.client.namespaces().get("vm3").record().id();
      assertThat(fx.cluster.server(0).store().pageCount(id)).isPositive();
      int slot = fx.cluster.slot(0);
      fx.client.cluster().setStatus(slot, ServerStatus.DRAINING, false);
      // The VM keeps writing while the drain runs.
      Path more = randomFile(dir, "more.img", 5, 16 * (int) MIB);
      ok(dir, "nbdcopy", more.toString(), uri);
      Awaitility.await().atMost(Duration.ofSeconds(60))
          .until(() -> fx.cluster.server(0).store().pageCount(id) == 0 && gw.metrics("vm3").underReplicated() == 0);
      fx.client.cluster().setStatus(slot, ServerStatus.REMOVED, false);
      fx.cluster.kill(0);
      assertThat(readBack(dir, uri, "after.img")).isEqualTo(Files.readAllBytes(more));
      try (VmdClient later = VmdClient.connect(KitClients.config(fx.cluster))) {
        assertThat(later.attach("vm3", false).readSync(0, 16 * 256)).isEqualTo(Files.readAllBytes(more));
      }
    }
  }
}
