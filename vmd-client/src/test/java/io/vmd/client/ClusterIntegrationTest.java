package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import io.vmd.server.LocalCluster;
import io.vmd.server.MiniVmdCluster;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ClusterIntegrationTest {
  private static final long MIB = 1 << 20;
  private final List<AutoCloseable> closeables = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (int i = closeables.size() - 1; i >= 0; i--) {
      closeables.get(i).close();
    }
  }

  private MiniVmdCluster cluster(LocalCluster.Builder<MiniVmdCluster> b) throws InterruptedException {
    MiniVmdCluster c = b.start();
    closeables.add(c);
    return c;
  }

  private VmdClient client(MiniVmdCluster c, String placement) throws VmdException {
    VmdClient client = VmdClient.connect(KitClients.config(c).withPlacement(placement));
    closeables.add(client);
    return client;
  }

  static byte[] content(long seed, int pages) {
    byte[] b = new byte[pages * Pages.PAGE_SIZE];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void pagesWrittenByOneClientReadBackByteExactThroughALaterClient() throws Exception {
    writeAndReadBackByteExact(MiniVmdCluster.builder());
  }

  /** Plaintext and unsealed, runs of 8 pages or more are sent straight from the servers' slots. */
  @Test
  void plaintextPagesLentByTheServersReadBackByteExact() throws Exception {
    writeAndReadBackByteExact(MiniVmdCluster.builder().insecure());
  }

  private void writeAndReadBackByteExact(LocalCluster.Builder<MiniVmdCluster> builder) throws Exception {
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random r = new Random(seed);
    MiniVmdCluster c = cluster(builder.servers(3, 64 * MIB));
    VmdClient writer = client(c, "round-robin");
    writer.namespaces().create("vm1", 32 * MIB, 1);
    Namespace ns = writer.attach("vm1", true);
    Set<Long> busy = new HashSet<>();
    List<CompletableFuture<Void>> inflight = new ArrayList<>();
    for (int i = 0; i < 400; i++) {
      int count = 1 + r.nextInt(r.nextBoolean() ? 4 : 300);
      long first = r.nextInt((int) ns.pages() - count);
      long contentSeed = r.nextLong();
      // Pipelined: many requests in flight, but never two on the same pages at once.
      boolean overlaps = false;
      for (long p = first; p < first + count && !overlaps; p++) {
        overlaps = busy.contains(p);
      }
      if (inflight.size() > 16 || overlaps) {
        CompletableFuture.allOf(inflight.toArray(new CompletableFuture<?>[0])).join();
        inflight.clear();
        busy.clear();
      }
      byte[] data = content(contentSeed, count);
      inflight.add(ns.write(first, count, Unpooled.wrappedBuffer(data)));
      for (int k = 0; k < count; k++) {
        busy.add(first + k);
        expected.put(first + k, Arrays.copyOfRange(data, k * Pages.PAGE_SIZE, (k + 1) * Pages.PAGE_SIZE));
      }
    }
    CompletableFuture.allOf(inflight.toArray(new CompletableFuture<?>[0])).join();
    // Trim a range: it reads as zeros afterwards.
    ns.deleteSync(100, 50);
    for (long p = 100; p < 150; p++) {
      expected.remove(p);
    }

    VmdClient reader = client(c, "round-robin");
    Namespace again = reader.attach("vm1", false);
    assertThat(again.locations().storedPages()).isEqualTo(expected.size());
    byte[] zero = new byte[Pages.PAGE_SIZE];
    for (long first = 0; first < again.pages(); first += 1024) {
      byte[] got = again.readSync(first, 1024);
      for (int k = 0; k < 1024; k++) {
        byte[] want = expected.getOrDefault(first + k, zero);
        byte[] page = Arrays.copyOfRange(got, k * Pages.PAGE_SIZE, (k + 1) * Pages.PAGE_SIZE);
        assertThat(page).as("page %d (seed %d)", first + k, seed).isEqualTo(want);
      }
    }
  }

  private final Map<Long, byte[]> expected = new HashMap<>();

  @Test
  void tenThousandNewPagesSplitEvenlyOverThreeServers() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(3, 64 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("even", 64 * MIB, 1);
    Namespace ns = client.attach("even", true);
    ByteBuf page = Unpooled.wrappedBuffer(content(1, 1));
    List<CompletableFuture<Void>> fs = new ArrayList<>();
    for (int p = 0; p < 10_000; p++) {
      fs.add(ns.write(p, 1, page));
    }
    CompletableFuture.allOf(fs.toArray(new CompletableFuture<?>[0])).join();
    for (int s = 0; s < 3; s++) {
      long held = c.server(s).store().pageCount(ns.record().id());
      assertThat(held).as("server %d", s).isBetween(3167L, 3500L); // 10,000 / 3 ± 5 %
    }
    assertThat(client.namespaces().usage("even").stream().mapToLong(ServerUsage::pages).sum()).isEqualTo(10_000);
  }

  @Test
  void weightedPlacementFollowsFreeMemory() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().server(32 * MIB).server(64 * MIB).server(96 * MIB));
    VmdClient client = client(c, "weighted");
    client.namespaces().create("w", 64 * MIB, 1);
    Namespace ns = client.attach("w", true);
    ByteBuf page = Unpooled.wrappedBuffer(content(2, 1));
    for (int p = 0; p < 3000; p++) {
      ns.write(p, 1, page).join();
    }
    long[] held = new long[3];
    for (int s = 0; s < 3; s++) {
      held[s] = c.server(s).store().pageCount(ns.record().id());
    }
    // Shares of free memory are 1/6, 2/6, 3/6 at the start.
    assertThat(held[0]).isBetween(400L, 600L);
    assertThat(held[2]).isBetween(1350L, 1650L);
  }

  @Test
  void fullServerStopsReceivingNewPagesWhileTheOthersGoOn() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().server(100 * Pages.PAGE_SIZE).servers(2, 64 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("fill", 64 * MIB, 1);
    Namespace ns = client.attach("fill", true);
    for (int p = 0; p < 3000; p++) {
      ns.writeSync(p, content(p, 1));
    }
    assertThat(c.server(0).store().usedPages()).isEqualTo(100);
    assertThat(c.server(1).store().usedPages() + c.server(2).store().usedPages()).isEqualTo(2900);
    for (int p = 0; p < 3000; p += 97) {
      assertThat(ns.readSync(p, 1)).isEqualTo(content(p, 1));
    }
  }

  @Test
  void fullClusterGivesNoSpaceAndLosesNothingStored() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(3, 50 * Pages.PAGE_SIZE));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("full", 4 * MIB, 1);
    Namespace ns = client.attach("full", true);
    int written = 0;
    VmdException refused = null;
    for (int p = 0; p < 200; p++) {
      try {
        ns.writeSync(p, content(p, 1));
        written++;
      } catch (VmdException e) {
        refused = e;
        break;
      }
    }
    assertThat(written).isEqualTo(150);
    assertThat(refused).isNotNull();
    assertThat(refused.code()).isEqualTo(ErrorCode.NO_SPACE);
    // A batch that straddles the limit is refused too, and rewriting stored pages still works.
    assertThatThrownBy(() -> ns.writeSync(160, content(9, 4))).isInstanceOf(VmdException.class);
    ns.writeSync(7, content(777, 1));
    for (int p = 0; p < 150; p++) {
      assertThat(ns.readSync(p, 1)).as("page %d", p).isEqualTo(content(p == 7 ? 777 : p, 1));
    }
    // Deleting gives room back.
    ns.deleteSync(0, 10);
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> ns.writeSync(170, content(170, 1)));
  }

  @Test
  void sharedReadsJoinReplySlicesAndZerosInOrderLikeCopyingReads() throws Exception {
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random r = new Random(seed);
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(3, 64 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("shared", 16 * MIB, 1);
    Namespace ns = client.attach("shared", true);
    int pages = (int) ns.pages();
    // Runs of written pages between holes, placed over three servers.
    for (int i = 0; i < 40; i++) {
      int first = r.nextInt(pages - 300);
      ns.writeSync(first, content(r.nextLong(), 1 + r.nextInt(300)));
    }
    ByteBufAllocator alloc = PooledByteBufAllocator.DEFAULT;
    for (int i = 0; i < 60; i++) {
      int count = 1 + r.nextInt(1024);
      int first = r.nextInt(pages - count);
      CompletableFuture<ByteBuf> got = new CompletableFuture<>();
      ns.readShared(first, count, alloc, (buf, err) -> {
        if (err != null) {
          got.completeExceptionally(err);
        } else {
          got.complete(buf);
        }
      });
      ByteBuf buf = got.get(10, TimeUnit.SECONDS);
      try {
        byte[] shared = new byte[buf.readableBytes()];
        buf.getBytes(buf.readerIndex(), shared);
        assertThat(shared).as("pages %d+%d", first, count).isEqualTo(ns.readSync(first, count));
      } finally {
        buf.release();
      }
    }
    CompletableFuture<VmdException> outside = new CompletableFuture<>();
    ns.readShared(pages - 1, 2, alloc, (buf, err) -> outside.complete(err));
    assertThat(outside.get(10, TimeUnit.SECONDS)).hasMessageContaining("outside namespace");
  }

  @Test
  void unwrittenPagesReadAsZerosAndDeleteGivesMemoryBack() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(2, 16 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("z", 8 * MIB, 2);
    Namespace ns = client.attach("z", true);
    assertThat(ns.readSync(5, 3)).isEqualTo(new byte[3 * Pages.PAGE_SIZE]);
    ns.writeSync(0, content(3, 64));
    // Two replicas: each page is on both servers.
    assertThat(c.server(0).store().usedPages()).isEqualTo(64);
    assertThat(c.server(1).store().usedPages()).isEqualTo(64);
    ns.deleteSync(0, ns.pages());
    assertThat(c.server(0).store().usedPages()).isZero();
    assertThat(c.server(1).store().usedPages()).isZero();
    assertThat(ns.readSync(0, 64)).isEqualTo(new byte[64 * Pages.PAGE_SIZE]);
  }

  @Test
  void outOfRangeAndStaleWritersGetClearErrors() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(2, 16 * MIB));
    VmdClient first = client(c, "round-robin");
    first.namespaces().create("fence", 1 * MIB, 1);
    Namespace old = first.attach("fence", true);
    assertThatThrownBy(() -> old.writeSync(256, content(1, 1)))
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST));
    old.writeSync(0, content(1, 1));
    Namespace owner = client(c, "round-robin").attach("fence", true);
    assertThat(owner.epoch()).isGreaterThan(old.epoch());
    assertThatThrownBy(() -> old.writeSync(0, content(2, 1)))
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.STALE_EPOCH));
    assertThat(owner.readSync(0, 1)).isEqualTo(content(1, 1));
  }

  @Test
  void deadServerFailsRequestsFastAndTheClientStaysUsable() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(2, 16 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("dead", 4 * MIB, 1);
    Namespace ns = client.attach("dead", true);
    // Two single-page writes: round-robin puts one page on each server.
    ns.writeSync(0, Arrays.copyOfRange(content(1, 2), 0, Pages.PAGE_SIZE));
    ns.writeSync(1, Arrays.copyOfRange(content(1, 2), Pages.PAGE_SIZE, 2 * Pages.PAGE_SIZE));
    assertThat(ns.locations().primary(0)).isNotEqualTo(ns.locations().primary(1));
    int killed = c.slot(1);
    c.kill(1);
    await().atMost(Duration.ofSeconds(5)).until(() -> !client.server(killed).up());
    int lostAt = ns.locations().primary(0) == killed ? 0 : 1;
    assertThatThrownBy(() -> ns.readSync(lostAt, 1))
        .isInstanceOfSatisfying(VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE));
    int live = 1 - lostAt;
    assertThat(ns.readSync(live, 1)).isEqualTo(
        Arrays.copyOfRange(content(1, 2), live * Pages.PAGE_SIZE, (live + 1) * Pages.PAGE_SIZE));
    // New pages go to the live server.
    ns.writeSync(10, content(5, 8));
    assertThat(c.server(0).store().pageCount(ns.record().id())).isGreaterThanOrEqualTo(9);
  }

  @Test
  void serversPushTheirFreeMemoryToEveryClient() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(2, 16 * MIB));
    VmdClient watcher = client(c, "round-robin");
    VmdClient writer = client(c, "round-robin");
    assertThat(watcher.cluster().servers().get(0).free()).isEqualTo(16 * MIB);
    writer.namespaces().create("push", 8 * MIB, 2);
    writer.attach("push", true).writeSync(0, content(4, 256));
    // The watcher placed nothing itself: only the servers' pushes can tell it.
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      for (ServerState s : watcher.membership().members()) {
        assertThat(s.free()).isEqualTo(16 * MIB - MIB);
        assertThat(s.availability().pages()).isEqualTo(256);
      }
    });
  }

  @Test
  void metricsEndpointServesPrometheusText() throws Exception {
    MiniVmdCluster c = cluster(MiniVmdCluster.builder().servers(1, 16 * MIB));
    VmdClient client = client(c, "round-robin");
    client.namespaces().create("m1", 8 * MIB, 1);
    client.attach("m1", true).writeSync(0, content(5, 3));
    try (MetricsEndpoint endpoint = MetricsEndpoint.start(
        new HostPort("127.0.0.1", 0), c.registry(0))) {
      HttpResponse<String> r = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + endpoint.port() + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.body())
          .contains("vmd_server_pages_stored 3.0")
          .contains("vmd_server_namespace_pages{namespace=\"m1\"} 3.0")
          .contains("vmd_server_request_seconds_count{op=\"PUT\"} 1")
          .contains("vmd_server_request_seconds_bucket{op=\"GET\"")
          .contains("vmd_server_free_bytes");
    }
  }
}
