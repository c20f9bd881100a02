package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.vmd.meta.ServerStatus;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import io.vmd.server.MiniVmdCluster;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The failures the control plane exists to prevent, as a user meets them: a server that does not
 * answer while a namespace is attached, two writers racing for one namespace, a namespace id reused
 * after a delete a server missed, an opener taking a namespace from its running owner, and servers
 * joining while pages are written. Every check is on bytes.
 */
class ControlPlaneTest {
  private static final int PAGES = 2048;
  private final List<AutoCloseable> open = new ArrayList<>();
  private MiniVmdCluster cluster;

  @AfterEach
  void close() throws Exception {
    for (int i = open.size() - 1; i >= 0; i--) {
      open.get(i).close();
    }
    if (cluster != null) {
      cluster.close();
    }
  }

  private VmdClient client(Duration attachWait) throws VmdException {
    VmdClient c = VmdClient.connect(KitClients.config(cluster).withRequestTimeout(Duration.ofSeconds(5))
        .withDownAfter(Duration.ofSeconds(1)).withAttachWait(attachWait));
    open.add(c);
    return c;
  }

  private static byte[] content(long seed, int pages) {
    byte[] b = new byte[pages * Pages.PAGE_SIZE];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static byte[] page(byte[] all, long p) {
    return Arrays.copyOfRange(all, (int) p * Pages.PAGE_SIZE, (int) (p + 1) * Pages.PAGE_SIZE);
  }

  /** Writes the pages through a writer that then leaves (releasing the namespace). */
  private byte[] writeAndLeave(String name, int replicas, long seed) throws Exception {
    try (VmdClient writer = VmdClient.connect(KitClients.config(cluster))) {
      writer.namespaces().create(name, (long) PAGES * Pages.PAGE_SIZE, replicas);
      byte[] data = content(seed, PAGES);
      writer.attach(name, true).writeSync(0, data);
      return data;
    }
  }

  /**
   * Reads every page one at a time: a page either reads back exactly or fails with UNAVAILABLE; it
   * never reads as zeros. Returns how many failed.
   */
  private static int readEachNeverZero(Namespace ns, byte[] data) {
    int failed = 0;
    for (long p = 0; p < PAGES; p++) {
      try {
        assertThat(ns.readSync(p, 1)).as("page %d", p).isEqualTo(page(data, p));
      } catch (VmdException e) {
        assertThat(e.code()).as("page %d: %s", p, e.getMessage()).isEqualTo(ErrorCode.UNAVAILABLE);
        failed++;
      }
    }
    return failed;
  }

  @Test
  void aServerFrozenDuringAnAttachGivesErrorsNeverZerosAndLosesNothingWhenItReturns() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    byte[] data = writeAndLeave("r1", 1, 1);
    int id = 1; // the cluster's first namespace
    long onFrozen = cluster.server(1).store().pageCount(id);
    assertThat(onFrozen).as("round-robin put pages on both servers").isPositive();
    cluster.freeze(1);

    VmdClient reader = client(Duration.ofSeconds(1));
    Namespace ns = reader.attach("r1", false);
    assertThat(ns.complete()).isFalse();
    assertThat(readEachNeverZero(ns, data)).as("the frozen server's pages are errors").isEqualTo((int) onFrozen);

    // A writer that takes it over meanwhile must not delete what the frozen server holds.
    VmdClient writer = client(Duration.ofSeconds(1));
    Namespace owned = writer.attach("r1", true);
    byte[] rewrite = content(2, 16);
    owned.writeSync(0, rewrite);
    System.arraycopy(rewrite, 0, data, 0, rewrite.length);

    cluster.thaw(1);
    // The owner's repairer sees the server come back before the owner has merged what it holds: the
    // copies its table does not place there are unknown to it, not stale, and are not deleted.
    try (Repairer repairer = new Repairer(writer, Duration.ofSeconds(1), 1000)) {
      repairer.rejoin(owned, cluster.slot(1));
    }
    await().atMost(Duration.ofSeconds(20)).until(() -> ns.complete() && owned.complete());
    assertThat(owned.readSync(0, PAGES)).as("every byte, the frozen server's pages included").isEqualTo(data);
    try (VmdClient later = VmdClient.connect(KitClients.config(cluster))) {
      assertThat(later.attach("r1", false).readSync(0, PAGES)).isEqualTo(data);
    }
  }

  @Test
  void withTwoReplicasBothHoldersFrozenGiveErrorsNeverZeros() throws Exception {
    cluster = MiniVmdCluster.builder().servers(3, 64L << 20).start();
    byte[] data = writeAndLeave("r2", 2, 3);
    cluster.freeze(1);
    cluster.freeze(2);
    VmdClient reader = client(Duration.ofSeconds(1));
    Namespace ns = reader.attach("r2", false);
    int failed = readEachNeverZero(ns, data);
    System.out.println("pages whose two holders were frozen: " + failed + " of " + PAGES);
    assertThat(failed).as("pages with both copies on the frozen servers").isPositive();
    cluster.thaw(1);
    cluster.thaw(2);
    await().atMost(Duration.ofSeconds(20)).until(ns::complete);
    assertThat(ns.readSync(0, PAGES)).isEqualTo(data);
  }

  @Test
  void twoConcurrentAttachesGetDistinctEpochsAndOnlyTheLaterWriterLands() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    VmdClient a = client(Duration.ofSeconds(5));
    VmdClient b = client(Duration.ofSeconds(5));
    a.namespaces().create("race", 16L << 20, 2);
    CompletableFuture<Namespace> fa = CompletableFuture.supplyAsync(() -> attach(a, "race"));
    CompletableFuture<Namespace> fb = CompletableFuture.supplyAsync(() -> attach(b, "race"));
    Namespace na = fa.get();
    Namespace nb = fb.get();
    assertThat(na.epoch()).isNotEqualTo(nb.epoch());
    Namespace earlier = na.epoch() < nb.epoch() ? na : nb;
    Namespace later = earlier == na ? nb : na;
    byte[] mine = content(4, 64);
    later.writeSync(0, mine);
    assertThatThrownBy(() -> earlier.writeSync(0, content(5, 64)))
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.STALE_EPOCH));
    assertThatThrownBy(() -> earlier.writeSync(100, content(6, 4))).isInstanceOf(VmdException.class);
    assertThat(later.readSync(0, 64)).isEqualTo(mine);
    assertThat(later.readSync(100, 4)).as("nothing of the earlier writer landed").isEqualTo(new byte[4 * Pages.PAGE_SIZE]);
  }

  private static Namespace attach(VmdClient c, String name) {
    try {
      return c.attach(name, true);
    } catch (VmdException e) {
      throw new CompletionException(e);
    }
  }

  @Test
  void aNamespaceCreatedAfterADeleteThatAServerMissedNeverShowsTheOldPages() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    VmdClient c = client(Duration.ofSeconds(5));
    c.namespaces().create("tenant", (long) PAGES * Pages.PAGE_SIZE, 2);
    int oldId = c.namespaces().get("tenant").record().id();
    Namespace old = c.attach("tenant", true);
    old.writeSync(0, content(7, PAGES));
    old.release();
    cluster.freeze(1); // misses the delete
    c.namespaces().delete("tenant");
    c.namespaces().create("tenant", (long) PAGES * Pages.PAGE_SIZE, 2);
    int newId = c.namespaces().get("tenant").record().id();
    assertThat(newId).as("ids are never reused").isNotEqualTo(oldId);
    assertThat(cluster.server(1).store().pageCount(oldId)).as("the frozen server still holds the old pages").isEqualTo(PAGES);
    cluster.thaw(1);
    await().atMost(Duration.ofSeconds(10)).until(() -> cluster.server(1).store().pageCount(oldId) == 0);
    assertThat(cluster.server(0).store().pageCount(oldId)).isZero();
    Namespace fresh = c.attach("tenant", true);
    assertThat(fresh.readSync(0, PAGES)).as("the new tenant sees nothing of the old one")
        .isEqualTo(new byte[PAGES * Pages.PAGE_SIZE]);
  }

  @Test
  void openingANamespaceOwnedByALiveWriterIsReadOnlyAndTheOwnerKeepsWriting() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    VmdClient a = client(Duration.ofSeconds(5));
    VmdClient b = client(Duration.ofSeconds(5));
    a.namespaces().create("owned", 16L << 20, 2);
    Namespace owner = a.attach("owned", VmdClient.Access.CLAIM);
    assertThat(owner.writable()).isTrue();
    owner.writeSync(0, content(8, 8));
    Namespace look = b.attach("owned", VmdClient.Access.CLAIM);
    assertThat(look.writable()).as("a second opener only reads").isFalse();
    assertThat(look.readSync(0, 8)).isEqualTo(content(8, 8));
    assertThatThrownBy(() -> look.writeSync(0, content(9, 1)))
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.READ_ONLY));
    owner.writeSync(8, content(10, 8));
    assertThat(owner.readSync(8, 8)).as("the owner still writes").isEqualTo(content(10, 8));
    // Leases are renewed: after several lease periods the owner still writes.
    Thread.sleep(KitClients.config(cluster).lease().toMillis() * 2);
    owner.writeSync(16, content(11, 8));
    assertThat(b.attach("owned", VmdClient.Access.CLAIM).writable()).isFalse();
    // Once the owner lets go, the next opener writes.
    owner.release();
    Namespace next = b.attach("owned", VmdClient.Access.CLAIM);
    assertThat(next.writable()).isTrue();
    next.writeSync(0, content(12, 1));
    assertThat(next.epoch()).isGreaterThan(owner.epoch());
  }

  @Test
  void aReadOnlyHandleReadsWhatTheOwnerWritesAfterItAttachedAndNeverGuessesZeros() throws Exception {
    cluster = MiniVmdCluster.builder().servers(3, 64L << 20).start();
    VmdClient a = client(Duration.ofSeconds(5));
    VmdClient b = client(Duration.ofSeconds(5));
    a.namespaces().create("live", 16L << 20, 2);
    Namespace owner = a.attach("live", VmdClient.Access.CLAIM);
    owner.writeSync(0, content(20, 8));
    Namespace reader = b.attach("live", VmdClient.Access.READ);
    assertThat(reader.readOnly()).isTrue();
    owner.writeSync(100, content(21, 8)); // new pages, placed after the reader attached
    owner.writeSync(0, content(22, 1)); // a rewrite where the page lives
    assertThat(reader.readSync(100, 8)).as("pages placed after the attach").isEqualTo(content(21, 8));
    assertThat(reader.readSync(0, 1)).isEqualTo(content(22, 1));
    assertThat(reader.readSync(200, 4)).as("never written: a hole").isEqualTo(new byte[4 * Pages.PAGE_SIZE]);
    assertThat(a.namespaces().get("live").holds(cluster.slot(2))).as("the server to freeze holds pages of it").isTrue();
    cluster.freeze(2);
    assertThatThrownBy(() -> reader.readSync(300, 1)).as("a server that may hold it is silent: no guess")
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE));
    cluster.thaw(2);
  }

  @Test
  void drainingAServerMovesThePagesOfNamespacesNobodyOwnsAndThenItCanBeRemoved() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    byte[] data = writeAndLeave("idle", 2, 30); // written, then its writer left: nobody owns it
    // The only server to move to joins afterwards: not yet in the namespace's server set.
    cluster.addServer(64L << 20);
    int id = 1;
    int slot = cluster.slot(0);
    assertThat(cluster.server(0).store().pageCount(id)).isPositive();
    VmdClient admin = client(Duration.ofSeconds(5));
    assertThatThrownBy(() -> admin.cluster().setStatus(slot, ServerStatus.REMOVED, false))
        .as("a server that holds pages is not removed").isInstanceOf(VmdException.class);
    assertThat(admin.cluster().drain(slot, Duration.ofSeconds(60))).isZero();
    assertThat(cluster.server(0).store().pageCount(id)).isZero();
    admin.cluster().setStatus(slot, ServerStatus.REMOVED, false);
    cluster.kill(0);
    try (VmdClient later = VmdClient.connect(KitClients.config(cluster))) {
      Namespace ns = later.attach("idle", false);
      assertThat(ns.complete()).as("a removed server is not waited for").isTrue();
      later.attach("idle", true).release(); // a writer takes the removed server out of the set
      assertThat(later.namespaces().get("idle").holds(slot)).isFalse();
      assertThat(ns.readSync(0, PAGES)).isEqualTo(data);
      for (long p = 0; p < PAGES; p++) {
        assertThat(ns.liveCopies(p)).as("page %d keeps two copies", p).isEqualTo(2);
      }
    }
  }

  @Test
  void aServerThatJoinsWhilePagesAreWrittenTakesNewPagesWithoutARestart() throws Exception {
    cluster = MiniVmdCluster.builder().servers(2, 64L << 20).start();
    VmdClient c = client(Duration.ofSeconds(5));
    c.namespaces().create("grow", 32L << 20, 2);
    Namespace ns = c.attach("grow", true);
    byte[] data = content(13, 8192);
    ns.writeSync(0, Arrays.copyOf(data, 1024 * Pages.PAGE_SIZE));
    int added = cluster.addServer(64L << 20);
    int slot = cluster.slot(added);
    await().atMost(Duration.ofSeconds(10)).until(() -> c.server(slot) != null && c.server(slot).takesNewPages());
    for (int p = 1024; p < 8192; p += 256) {
      ns.writeSync(p, Arrays.copyOfRange(data, p * Pages.PAGE_SIZE, (p + 256) * Pages.PAGE_SIZE));
    }
    int id = ns.record().id();
    assertThat(cluster.server(added).store().pageCount(id)).as("the new server took new pages").isPositive();
    assertThat(c.namespaces().get("grow").holds(slot)).as("it is in the namespace's server set").isTrue();
    try (VmdClient later = VmdClient.connect(KitClients.config(cluster))) {
      assertThat(later.attach("grow", false).readSync(0, 8192)).isEqualTo(data);
    }
  }
}
