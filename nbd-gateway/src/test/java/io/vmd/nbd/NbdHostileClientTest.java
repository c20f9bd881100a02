package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.PooledByteBufAllocator;
import io.vmd.common.HostPort;
import io.vmd.server.MiniVmdCluster;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Clients that misbehave without dying, over raw sockets: each check is that the gateway's memory
 * stays within its budgets, that a well-behaved client beside them keeps being answered correctly,
 * and that nothing stored is lost.
 */
class NbdHostileClientTest {
  private static final long MIB = 1 << 20;
  private static final long PER_CONNECTION = 16 * MIB;
  private static final long TOTAL = 64 * MIB;
  /** Pool chunks, socket buffers and the servers' own frames: what the budget does not count. */
  private static final long SLACK = 48 * MIB;

  private GatewayFixture fx;
  private final ExecutorService threads = Executors.newCachedThreadPool();
  private final List<Socket> hostile = new ArrayList<>();
  private byte[] stored;

  @BeforeEach
  void start() throws Exception {
    fx = new GatewayFixture(MiniVmdCluster.builder().servers(2, 256 * MIB).start(),
        c -> c.withBudgets(PER_CONNECTION, TOTAL).withHandshakeTimeout(Duration.ofSeconds(2)));
    fx.client.namespaces().create("vm1", 128 * MIB, 1);
    // 4 MiB that must survive whatever the hostile clients do.
    stored = new byte[(int) (4 * MIB)];
    new Random(7).nextBytes(stored);
    try (RawNbdClient c = good(false)) {
      writeAndCheck(c, 0, stored, 1);
    }
  }

  @AfterEach
  void stop() throws Exception {
    for (Socket s : hostile) {
      s.close();
    }
    threads.shutdownNow();
    try {
      Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> fx.gateway.budgetUsed() == 0);
      try (RawNbdClient c = good(true)) {
        assertThat(read(c, 0, stored.length, 9)).as("the data stored before the hostile clients came").isEqualTo(stored);
      }
    } finally {
      fx.close();
    }
  }

  private RawNbdClient good(boolean structured) throws IOException {
    HostPort at = fx.gateway.address();
    RawNbdClient c = new RawNbdClient(at.host(), at.port());
    if (structured) {
      c.structuredReplies();
    }
    assertThat(c.go("vm1")).isEqualTo(128 * MIB);
    return c;
  }

  private static void writeAndCheck(RawNbdClient c, long offset, byte[] data, long handle) throws IOException {
    c.request(NbdProtocol.CMD_WRITE, 0, handle, offset, data.length, data);
    c.flush();
    RawNbdClient.Reply w = c.reply(0);
    assertThat(w.handle()).isEqualTo(handle);
    assertThat(w.error()).as("WRITE at %d: %s", offset, w.message()).isZero();
    assertThat(read(c, offset, data.length, handle + 1)).isEqualTo(data);
  }

  private static byte[] read(RawNbdClient c, long offset, int length, long handle) throws IOException {
    c.request(NbdProtocol.CMD_READ, 0, handle, offset, length, null);
    c.flush();
    RawNbdClient.Reply r = c.reply(length);
    assertThat(r.handle()).isEqualTo(handle);
    assertThat(r.error()).as("READ at %d: %s", offset, r.message()).isZero();
    return r.data();
  }

  /** Pooled direct memory of this JVM (gateway, client and servers): what the budget protects. */
  private static long directMemory() {
    return PooledByteBufAllocator.DEFAULT.metric().usedDirectMemory();
  }

  /** A socket that has chosen vm1 (fixed newstyle, GO) and is left to the caller's bad manners. */
  private Socket attached(boolean structured) throws IOException {
    HostPort at = fx.gateway.address();
    RawNbdClient c = new RawNbdClient(at.host(), at.port());
    if (structured) {
      c.structuredReplies();
    }
    c.go("vm1");
    hostile.add(c.socket);
    return c.socket;
  }

  /** A well-behaved client's round trips while the others misbehave; every byte checked. */
  private void wellBehavedRoundTrips(int rounds, long seed) throws IOException {
    Random r = new Random(seed);
    try (RawNbdClient c = good(true)) {
      for (int i = 0; i < rounds; i++) {
        byte[] data = new byte[4096 * (1 + r.nextInt(16))];
        r.nextBytes(data);
        long offset = 4 * MIB + 4096L * r.nextInt(20_000);
        writeAndCheck(c, offset, data, 100 + 2L * i);
      }
    }
  }

  /** Samples the gateway's budget and the JVM's direct memory for a while; returns the maxima. */
  private long[] watch(long millis) throws InterruptedException {
    long budget = 0;
    long direct = 0;
    long end = System.nanoTime() + millis * 1_000_000;
    while (System.nanoTime() < end) {
      budget = Math.max(budget, fx.gateway.budgetUsed());
      direct = Math.max(direct, directMemory());
      Thread.sleep(20);
    }
    return new long[] {budget, direct};
  }

  @Test
  void clientsThatNeverReadTheirRepliesHoldNoMoreThanTheirBudgets() throws Exception {
    long before = directMemory();
    AtomicLong sent = new AtomicLong();
    List<Future<?>> floods = new ArrayList<>();
    for (int k = 0; k < 3; k++) {
      Socket s = attached(k == 0);
      floods.add(threads.submit(() -> {
        // 1,500 READs of 32 MiB each, and never a reply read: 47 GiB asked for.
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
        for (int i = 0; i < 1500; i++) {
          out.writeInt(NbdProtocol.REQUEST_MAGIC);
          out.writeShort(0);
          out.writeShort(NbdProtocol.CMD_READ);
          out.writeLong(i);
          out.writeLong(0);
          out.writeInt((int) (32 * MIB));
          sent.incrementAndGet();
        }
        out.flush();
        return null;
      }));
    }
    long[] max = watch(3000);
    wellBehavedRoundTrips(100, 11);
    long[] after = watch(1000);
    System.out.printf("never-reading clients: %d READs sent, budget used at most %d MiB (limit %d), "
        + "direct memory +%d MiB%n", sent.get(), Math.max(max[0], after[0]) / MIB, TOTAL / MIB,
        (Math.max(max[1], after[1]) - before) / MIB);
    assertThat(Math.max(max[0], after[0])).isLessThanOrEqualTo(TOTAL).isGreaterThanOrEqualTo(3 * PER_CONNECTION / 2);
    assertThat(Math.max(max[1], after[1]) - before).isLessThanOrEqualTo(TOTAL + SLACK);
    assertThat(fx.registry.scrape()).contains("vmd_gateway_reads_paused_total");
  }

  @Test
  void aWriteAnnouncedAndNeverSentHoldsOnlyWhatCameAndBlocksNobody() throws Exception {
    // 32 MiB announced at offset 0, 1 MiB of it sent; and 3 MiB announced, 100 KiB sent.
    Socket big = attached(false);
    DataOutputStream out = new DataOutputStream(big.getOutputStream());
    writeHeader(out, NbdProtocol.CMD_WRITE, 1, 0, 32 * MIB);
    out.write(new byte[(int) MIB]);
    out.flush();
    Socket small = attached(true);
    out = new DataOutputStream(small.getOutputStream());
    writeHeader(out, NbdProtocol.CMD_WRITE, 1, 0, 3 * MIB);
    out.write(new byte[100 << 10]);
    out.flush();
    // The same pages are written and read by a good client meanwhile: nothing waits for the payloads.
    byte[] fresh = new byte[(int) (2 * MIB)];
    new Random(3).nextBytes(fresh);
    System.arraycopy(fresh, 0, stored, 0, fresh.length);
    try (RawNbdClient c = good(false)) {
      writeAndCheck(c, 0, fresh, 1);
    }
    wellBehavedRoundTrips(20, 12);
    assertThat(fx.gateway.budgetUsed()).as("incomplete payloads are not charged until a piece is whole")
        .isLessThan(MIB);
    // Closing them mid-payload stores nothing of theirs (checked in stop()).
  }

  @Test
  void aHandshakeLeftHalfWayIsClosedAtTheDeadline() throws Exception {
    HostPort at = fx.gateway.address();
    try (Socket silent = new Socket(at.host(), at.port()); Socket half = new Socket(at.host(), at.port())) {
      silent.setSoTimeout(20_000);
      half.setSoTimeout(20_000);
      DataOutputStream out = new DataOutputStream(half.getOutputStream());
      out.writeInt(NbdProtocol.FLAG_C_FIXED_NEWSTYLE);
      out.writeLong(NbdProtocol.IHAVEOPT);
      out.writeShort(0); // half an option header
      out.flush();
      assertThat(closedAfterGreeting(silent)).isTrue();
      assertThat(closedAfterGreeting(half)).isTrue();
    }
    wellBehavedRoundTrips(5, 13);
  }

  private static boolean closedAfterGreeting(Socket s) throws IOException {
    DataInputStream in = new DataInputStream(s.getInputStream());
    in.readFully(new byte[18]);
    try {
      return in.read() == -1;
    } catch (SocketException reset) {
      return true;
    }
  }

  @Test
  void tenThousandConnectionsOpenedAndDroppedLeaveNothingBehind() throws Exception {
    long before = directMemory();
    HostPort at = fx.gateway.address();
    List<Future<?>> workers = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      int worker = t;
      workers.add(threads.submit(() -> {
        for (int i = 0; i < 1250; i++) {
          if (i % 25 == 0) {
            // Some choose the export first, then drop.
            try (RawNbdClient c = new RawNbdClient(at.host(), at.port())) {
              c.go("vm1");
            }
          } else {
            try (Socket s = new Socket(at.host(), at.port())) {
              if ((i + worker) % 2 == 0) {
                s.getOutputStream().write(new byte[] {0, 0, 0});
              }
            }
          }
        }
        return null;
      }));
    }
    for (Future<?> w : workers) {
      w.get(240, TimeUnit.SECONDS);
    }
    Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> fx.gateway.connectionCount() == 0);
    wellBehavedRoundTrips(20, 14);
    System.out.printf("10,000 connections: direct memory %+d MiB after%n", (directMemory() - before) / MIB);
    assertThat(directMemory() - before).isLessThanOrEqualTo(SLACK);
    // The last reply's budget is freed once the gateway's write has returned, which may be just after
    // the client read it.
    Awaitility.await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
        assertThat(fx.gateway.budgetUsed()).as(fx.gateway.describeConnections()).isZero());
  }

  @Test
  void optionsFloodedBeforeGoAreReadOnlyAsFastAsTheirRepliesAreTaken() throws Exception {
    long before = directMemory();
    HostPort at = fx.gateway.address();
    AtomicLong options = new AtomicLong();
    for (int k = 0; k < 2; k++) {
      Socket s = new Socket(at.host(), at.port());
      hostile.add(s);
      boolean huge = k == 1;
      threads.submit(() -> {
        DataInputStream in = new DataInputStream(s.getInputStream());
        in.readFully(new byte[18]);
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
        out.writeInt(NbdProtocol.FLAG_C_FIXED_NEWSTYLE | NbdProtocol.FLAG_C_NO_ZEROES);
        byte[] name = "vm1".getBytes(StandardCharsets.UTF_8);
        byte[] junk = new byte[NbdProtocol.MAX_OPTION];
        while (!s.isClosed()) {
          out.writeLong(NbdProtocol.IHAVEOPT);
          if (huge) {
            // The largest option there is, unknown: answered with an error each time.
            out.writeInt(0x7777);
            out.writeInt(junk.length);
            out.write(junk);
          } else {
            out.writeInt(NbdProtocol.OPT_LIST);
            out.writeInt(0);
          }
          options.incrementAndGet();
        }
        return null;
      });
    }
    long[] max = watch(3000);
    wellBehavedRoundTrips(20, 15);
    System.out.printf("option floods: %d options sent, direct memory +%d MiB at most%n", options.get(),
        (max[1] - before) / MIB);
    assertThat(max[1] - before).isLessThanOrEqualTo(SLACK);
  }

  @Test
  void requestsAfterDiscAreNotServed() throws Exception {
    Socket s = attached(false);
    DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
    // DISC and two requests after it in one segment, so they reach the gateway in the same read.
    byte[] zeros = new byte[4096];
    writeHeader(out, NbdProtocol.CMD_DISC, 1, 0, 0);
    writeHeader(out, NbdProtocol.CMD_WRITE, 2, 0, zeros.length);
    out.write(zeros);
    writeHeader(out, NbdProtocol.CMD_READ, 3, 0, 4096);
    out.flush();
    try {
      writeHeader(out, NbdProtocol.CMD_WRITE, 4, 0, 8 * MIB);
      out.write(new byte[(int) (8 * MIB)]);
      out.flush();
    } catch (SocketException closed) {
      // the gateway closed after DISC while the rest was still being sent: what it should do
    }
    s.setSoTimeout(20_000);
    try {
      assertThat(s.getInputStream().read()).as("no reply after DISC, only the close").isEqualTo(-1);
    } catch (SocketException reset) {
      // closed with our bytes unread: also a close
    }
    // stop() checks that the first pages still hold what was stored, not the zeros sent after DISC.
  }

  @Test
  void largeRequestsWithoutNegotiatedBlockSizesAreServedInPieces() throws Exception {
    byte[] data = new byte[(int) (40 * MIB)];
    new Random(5).nextBytes(data);
    long offset = 4 * MIB + 4096 + 512;
    HostPort at = fx.gateway.address();
    long[] maxBudget = new long[1];
    Future<?> watcher = threads.submit(() -> {
      while (!Thread.currentThread().isInterrupted()) {
        maxBudget[0] = Math.max(maxBudget[0], fx.gateway.budgetUsed());
        Thread.sleep(5);
      }
      return null;
    });
    try (RawNbdClient old = new RawNbdClient(at.host(), at.port())) {
      // NBD_OPT_EXPORT_NAME: no block sizes, so the protocol's maximum is effectively unlimited.
      assertThat(old.exportName("vm1")).isEqualTo(128 * MIB);
      writeAndCheck(old, offset, data, 1);
      // Several long simple replies at once: each is written whole, nothing between its pieces.
      int len = (int) (9 * MIB);
      for (int k = 0; k < 3; k++) {
        old.request(NbdProtocol.CMD_READ, 0, 10 + k, offset + k * 13 * MIB, len, null);
      }
      old.flush();
      for (int k = 0; k < 3; k++) {
        RawNbdClient.Reply r = old.reply(len);
        int which = (int) (r.handle() - 10);
        assertThat(r.error()).isZero();
        assertThat(r.data()).as("long simple reply %d", which)
            .isEqualTo(Arrays.copyOfRange(data, which * 13 * (int) MIB, which * 13 * (int) MIB + len));
      }
    }
    try (RawNbdClient c = good(true)) {
      assertThat(read(c, offset, data.length, 5)).isEqualTo(data);
      byte[] partly = new byte[(int) (9 * MIB + 100)];
      System.arraycopy(data, 1000, partly, 0, partly.length);
      assertThat(read(c, offset + 1000, partly.length, 6)).isEqualTo(partly);
    }
    watcher.cancel(true);
    System.out.printf("40 MiB requests: the connection's budget used at most %d MiB%n", maxBudget[0] / MIB);
    assertThat(maxBudget[0]).isLessThanOrEqualTo(PER_CONNECTION + ConnectionBudget.MAX_COST);
  }

  private static void writeHeader(DataOutputStream out, int type, long handle, long offset, long length)
      throws IOException {
    out.writeInt(NbdProtocol.REQUEST_MAGIC);
    out.writeShort(0);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt((int) length);
  }
}
