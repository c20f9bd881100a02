package io.vmd.nbd;

import static io.vmd.nbd.GatewayFixture.ok;
import static io.vmd.nbd.GatewayFixture.randomFile;
import static io.vmd.nbd.GatewayFixture.readBack;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.server.MiniVmdCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an NBD client sees when the cluster loses a server, a gateway dies, or a namespace is handed to
 * another gateway: three servers, two replicas, nbdcopy as the client.
 */
class NbdFailoverTest {
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
  void aServerKilledWhileNbdcopyWritesLosesNothingAndTheClientSeesNoError() throws Exception {
    fx = new GatewayFixture(3, 256 * MIB);
    fx.client.namespaces().create("vm1", 96 * MIB, 2);
    Path first = randomFile(dir, "first.img", 1, 96 * (int) MIB);
    ok(dir, "nbdcopy", first.toString(), fx.uri("vm1"));
    Path second = randomFile(dir, "second.img", 2, 96 * (int) MIB);
    double before = fx.gateway.metrics("vm1").pagesOut();
    // One request at a time, so the copy lasts long enough to lose a server in the middle of it.
    Process writer = new ProcessBuilder("nbdcopy", "--connections=1", "--requests=1", "--request-size=65536",
        second.toString(), fx.uri("vm1"))
        .redirectErrorStream(true).redirectOutput(dir.resolve("nbdcopy.log").toFile()).start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (fx.gateway.metrics("vm1").pagesOut() < before + 4096 && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    boolean stillWriting = writer.isAlive();
    fx.cluster.kill(1);
    assertThat(writer.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(writer.exitValue()).as(Files.readString(dir.resolve("nbdcopy.log"))).isZero();
    assertThat(stillWriting).as("the server died in the middle of the copy").isTrue();
    assertThat(readBack(dir, fx.uri("vm1"), "back.img")).isEqualTo(Files.readAllBytes(second));
    assertThat(fx.gateway.metrics("vm1").errors()).as("NBD errors the gateway answered").isZero();
  }

  @Test
  void pagesThatLostACopyGetANewOneSoLosingASecondServerLosesNothing() throws Exception {
    fx = new GatewayFixture(3, 64 * MIB);
    fx.client.namespaces().create("vm4", 16 * MIB, 2);
    try (NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
        .withRereplication(Duration.ofMillis(500), 100_000), fx.client, new SimpleMeterRegistry())) {
      String uri = "nbd://" + gw.address() + "/vm4";
      Path data = randomFile(dir, "data4.img", 6, 16 * (int) MIB);
      ok(dir, "nbdcopy", data.toString(), uri);
      fx.cluster.kill(0);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() ->
          gw.metrics("vm4").rereplicated() > 0 && gw.metrics("vm4").underReplicated() == 0);
      System.out.println("re-replicated " + gw.metrics("vm4").rereplicated() + " page copies");
      fx.cluster.kill(1);
      assertThat(readBack(dir, uri, "survivor.img")).as("every page has a copy on the last server")
          .isEqualTo(Files.readAllBytes(data));
    }
  }

  private long copiesOf(String namespace) throws Exception {
    int id = fx.client.namespaces().get(namespace).record().id();
    long n = 0;
    for (int i = 0; i < fx.cluster.size(); i++) {
      if (fx.cluster.server(i) != null) {
        n += fx.cluster.server(i).store().pageCount(id);
      }
    }
    return n;
  }

  @Test
  void aServerThatRestartsEmptyIsRefilledAndOneThatMissedWritesLosesItsStaleCopies() throws Exception {
    fx = new GatewayFixture(3, 64 * MIB);
    fx.client.namespaces().create("vm5", 8 * MIB, 2);
    try (NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
        .withRereplication(Duration.ofMillis(500), 100_000), fx.client, new SimpleMeterRegistry())) {
      String uri = "nbd://" + gw.address() + "/vm5";
      Path data = randomFile(dir, "data5.img", 7, 8 * (int) MIB);
      ok(dir, "nbdcopy", data.toString(), uri);
      int pages = 8 * 256;
      assertThat(copiesOf("vm5")).isEqualTo(2L * pages);

      // Restarted in memory: it comes back empty, as a new member; its lost copies are made again.
      fx.cluster.restart(0);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
          .until(() -> copiesOf("vm5") == 2L * pages && gw.metrics("vm5").underReplicated() == 0);
      fx.cluster.kill(1);
      assertThat(readBack(dir, uri, "after-restart.img")).isEqualTo(Files.readAllBytes(data));
      fx.cluster.restart(1);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
          .until(() -> copiesOf("vm5") == 2L * pages && gw.metrics("vm5").underReplicated() == 0);

      // A server that hangs while the VM rewrites everything keeps old copies: dropped when it returns.
      fx.cluster.freeze(2);
      int frozen = fx.cluster.slot(2);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
          .until(() -> !fx.client.cluster().server(frozen).up());
      Path rewritten = randomFile(dir, "data5b.img", 8, 8 * (int) MIB);
      ok(dir, "nbdcopy", rewritten.toString(), uri);
      fx.cluster.thaw(2);
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
          .until(() -> fx.client.cluster().server(frozen).up() && copiesOf("vm5") == 2L * pages
              && gw.metrics("vm5").underReplicated() == 0);
      assertThat(readBack(dir, uri, "after-thaw.img")).isEqualTo(Files.readAllBytes(rewritten));
    }
  }

  /**
   * Persisted servers: one is stopped while the VM rewrites its whole device, the gateway then dies too,
   * and the server comes back with its old copies. A new gateway serves the rewritten data (the old
   * copies carry lower stamps) and deletes the stale copies.
   */
  @Test
  void aNewGatewayIgnoresAndDeletesStaleCopiesOfAPersistedServerThatReturnsAfterTheWriterDied() throws Exception {
    fx = new GatewayFixture(MiniVmdCluster.builder().servers(3, 64 * MIB)
        .persisted(dir.resolve("servers")).start());
    fx.client.namespaces().create("vm6", 8 * MIB, 2);
    int pages = 8 * 256;
    Path first = randomFile(dir, "data6.img", 11, 8 * (int) MIB);
    ok(dir, "nbdcopy", first.toString(), fx.uri("vm6"));
    int id = fx.client.namespaces().get("vm6").record().id();
    long held = fx.cluster.server(1).store().pageCount(id);
    assertThat(held).isPositive();
    fx.cluster.kill(1);
    Path second = randomFile(dir, "data6b.img", 12, 8 * (int) MIB);
    ok(dir, "nbdcopy", second.toString(), fx.uri("vm6"));
    fx.gateway.close();
    fx.client.close();
    fx.cluster.restart(1);
    assertThat(fx.cluster.server(1).store().pageCount(id)).as("old copies back with the server").isEqualTo(held);
    try (VmdClient other = VmdClient.connect(KitClients.config(fx.cluster));
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), other,
            new SimpleMeterRegistry())) {
      assertThat(readBack(dir, "nbd://" + gw.address() + "/vm6", "back6.img")).isEqualTo(Files.readAllBytes(second));
      assertThat(fx.cluster.server(1).store().pageCount(id)).as("stale copies deleted").isZero();
      assertThat(fx.storedPages(id)).isEqualTo(2L * pages);
    }
  }

  @Test
  void aNewGatewayOnAnotherClientReadsBackEverythingTheDeadOneWrote() throws Exception {
    fx = new GatewayFixture(3, 128 * MIB);
    fx.client.namespaces().create("vm2", 32 * MIB, 2);
    Path data = randomFile(dir, "data.img", 3, 32 * (int) MIB);
    ok(dir, "nbdcopy", data.toString(), fx.uri("vm2"));
    fx.gateway.close();
    fx.client.close();
    try (VmdClient other = VmdClient.connect(KitClients.config(fx.cluster));
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), other,
            new SimpleMeterRegistry())) {
      assertThat(readBack(dir, "nbd://" + gw.address() + "/vm2", "again.img")).isEqualTo(Files.readAllBytes(data));
    }
  }

  @Test
  void afterAHandOffTheOldGatewaysWritesAreRefusedAndTheNewOwnersDataStaysIntact() throws Exception {
    fx = new GatewayFixture(3, 128 * MIB);
    fx.client.namespaces().create("vm3", 16 * MIB, 2);
    Path old = randomFile(dir, "old.img", 4, 16 * (int) MIB);
    ok(dir, "nbdcopy", old.toString(), fx.uri("vm3"));
    // The namespace is handed to the destination host's gateway: its epoch moves on.
    try (VmdClient dest = VmdClient.connect(KitClients.config(fx.cluster));
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), dest,
            new SimpleMeterRegistry())) {
      dest.namespaces().handOff("vm3", dest.ownerId());
      String newUri = "nbd://" + gw.address() + "/vm3";
      Path fresh = randomFile(dir, "new.img", 5, 16 * (int) MIB);
      ok(dir, "nbdcopy", fresh.toString(), newUri);
      // The stale gateway still has its connection and keeps writing: every write must fail.
      GatewayFixture.Result stale = GatewayFixture.run(dir, "nbdcopy", old.toString(), fx.uri("vm3"));
      assertThat(stale.exit()).as("a stale writer is refused").isNotZero();
      assertThat(stale.err()).containsIgnoringCase("input/output error");
      assertThat(readBack(dir, newUri, "after.img")).as("the new owner's data").isEqualTo(Files.readAllBytes(fresh));
    }
  }
}
