package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import io.vmd.common.HostPort;
import io.vmd.common.Transports;
import io.vmd.meta.Member;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.server.MiniVmdCluster;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ServerConnectionTest {

  @Test
  void aReplyHandlerThatThrowsFailsItsRequestInsteadOfLeavingItWaiting() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 1 << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c))) {
      ServerConnection conn = client.membership().connection(c.slot(0));
      CompletableFuture<VmdException> failed = new CompletableFuture<>();
      long id = conn.nextId();
      ByteBuf frame = Codec.frame(ByteBufAllocator.DEFAULT, Op.NS_LIST, 0, 0, id, 0, 0, 0, 0, null);
      conn.send(id, frame, new Pending() {
        @Override
        void onReply(ByteBuf f) {
          throw new IllegalStateException("boom");
        }

        @Override
        void onFailure(VmdException e) {
          failed.complete(e);
        }
      });
      VmdException e = failed.get(5, TimeUnit.SECONDS);
      assertThat(e.code()).isEqualTo(ErrorCode.INTERNAL);
      assertThat(e.getMessage()).contains("boom");
      // The connection carries on.
      assertThat(client.namespaces().list()).isEmpty();
    }
  }

  /** A fake server that refuses every HELLO with a passing reason (NOT_READY), counting the tries. */
  @Test
  void aServerThatRefusesHelloIsLetGoAndTriedAgainWithBackoff() throws Exception {
    AtomicInteger tries = new AtomicInteger();
    AtomicInteger closedByClient = new AtomicInteger();
    try (ServerSocket refuser = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread t = new Thread(() -> {
        while (!refuser.isClosed()) {
          try (Socket s = refuser.accept()) {
            tries.incrementAndGet();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] hello = new byte[in.readInt()];
            in.readFully(hello);
            ByteBuf f = Unpooled.wrappedBuffer(hello);
            ByteBuf refusal = Codec.error(ByteBufAllocator.DEFAULT, Op.HELLO, Frame.requestId(f), 0,
                ErrorCode.NOT_READY, "starting");
            byte[] out = new byte[refusal.readableBytes()];
            refusal.readBytes(out);
            refusal.release();
            s.getOutputStream().write(out);
            s.setSoTimeout(5000);
            if (in.read() == -1) {
              closedByClient.incrementAndGet();
            }
          } catch (IOException e) {
            // next
          }
        }
      });
      t.setDaemon(true);
      t.start();
      EventLoopGroup group = Transports.group(1, "test");
      try {
        ServerState state = new ServerState(new Member("fake", 1,
            new HostPort("127.0.0.1", refuser.getLocalPort()), ServerStatus.ACTIVE, false));
        ServerConnection conn = new ServerConnection(state, ClientConfig.of(
            List.of(new HostPort("127.0.0.1", 1))));
        assertThat(conn.connect(group.next()).handle((v, e) -> e).get(5, TimeUnit.SECONDS))
            .isInstanceOf(VmdException.class).hasMessageContaining("refused HELLO");
        // Retried (250 ms, then 500 ms, 1 s ...), each refused connection let go by the client.
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(15)).until(() -> tries.get() >= 3);
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(6))
            .until(() -> closedByClient.get() >= 2);
        assertThat(conn.active()).isFalse();
        conn.close();
      } finally {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      }
    }
  }

  /** Requests sent from other threads while the connection closes: each ends, none waits forever. */
  @Test
  void everyRequestSentAsTheConnectionClosesEnds() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 1 << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c))) {
      for (int round = 0; round < 5; round++) {
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(15)).ignoreExceptions()
            .until(() -> client.membership().connection(c.slot(0)).active());
        ServerConnection conn = client.membership().connection(c.slot(0));
        int n = 2000;
        CountDownLatch ended = new CountDownLatch(n);
        Thread sender = new Thread(() -> {
          for (int i = 0; i < n; i++) {
            long id = conn.nextId();
            conn.send(id, Codec.frame(ByteBufAllocator.DEFAULT, Op.NS_LIST, 0, 0, id, 0, 0, 0, 0, null), new Pending() {
              @Override
              void onReply(ByteBuf f) {
                ended.countDown();
              }

              @Override
              void onFailure(VmdException e) {
                ended.countDown();
              }
            });
          }
        });
        sender.start();
        Thread.sleep(round);
        c.kill(0);
        sender.join();
        assertThat(ended.await(30, TimeUnit.SECONDS)).as("every request answered or failed").isTrue();
        c.restart(0);
      }
    }
  }

  /** A server that stops reading: its requests queue up to the bound, then fail at once; the rest land after. */
  @Test
  void aFrozenServerGetsItsRequestsQueuedUpToTheBoundThenRefused() throws Exception {
    long bound = 8 << 20;
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 256L << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c).withMaxQueuedBytes(bound)
             .withDownAfter(Duration.ofSeconds(60)).withRequestTimeout(Duration.ofSeconds(8)))) {
      client.namespaces().create("q", 256L << 20, 1);
      Namespace ns = client.attach("q", true);
      ns.writeSync(256L * 64, new byte[4096]); // the server is in the namespace's set before it hangs
      c.freeze(0);
      byte[] page = new byte[1 << 20];
      new Random(1).nextBytes(page);
      List<CompletableFuture<Void>> writes = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        writes.add(ns.write(256L * i, 256, Unpooled.wrappedBuffer(page)));
      }
      // The socket and Netty take a few MiB; then the queue fills to its bound and stays there. Which
      // of the server's connections carries the writes is known only once they are queued: choosing
      // it before (all empty, so any) left the test waiting on an idle one.
      ServerConnection[] conns = client.server(c.slot(0)).connections;
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(6))
          .until(() -> Arrays.stream(conns).anyMatch(x -> x.queuedBytes() > bound - (2 << 20)));
      ServerConnection conn = Arrays.stream(conns).max(Comparator.comparingLong(ServerConnection::queuedBytes))
          .orElseThrow();
      Thread.sleep(300);
      assertThat(conn.queuedBytes()).isLessThanOrEqualTo(bound);
      c.thaw(0);
      int landed = 0;
      for (int i = 0; i < writes.size(); i++) {
        try {
          writes.get(i).get(60, TimeUnit.SECONDS);
          landed++;
          assertThat(ns.readSync(256L * i, 256)).isEqualTo(page);
        } catch (ExecutionException e) {
          // Refused at the bound: with no other server to place it on, the write fails (after waiting
          // for one up to the request timeout); never stuck.
          assertThat(VmdException.from(e).code()).isEqualTo(ErrorCode.UNAVAILABLE);
          assertThat(VmdException.from(e).getMessage()).contains("not taking requests");
        }
      }
      assertThat(landed).isGreaterThan(0).isLessThan(64);
    }
  }

  /**
   * A pooled request that completes, goes back to its pool and is taken for a new request by its own
   * completion callback, which then throws: the exception must not fail the new request.
   */
  @Test
  void aCallbackThatThrowsAfterItsRequestWasRecycledDoesNotFailTheNextUser() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 1 << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c))) {
      ServerConnection conn = client.membership().connection(c.slot(0));
      CompletableFuture<String> second = new CompletableFuture<>();
      // One object, used for two requests in turn, as a pool would hand it out.
      Pending reused = new Pending() {
        int use;

        @Override
        void onReply(ByteBuf f) {
          if (use++ == 0) {
            retire(); // back to "the pool" ...
            long next = conn.nextId(); // ... and out again for the next request, from the callback
            conn.send(next, Codec.frame(ByteBufAllocator.DEFAULT, Op.NS_LIST, 0, 0, next, 0, 0, 0, 0, null), this);
            throw new IllegalStateException("a careless callback");
          }
          second.complete("answered");
        }

        @Override
        void onFailure(VmdException e) {
          second.complete("failed: " + e.getMessage());
        }
      };
      long id = conn.nextId();
      conn.send(id, Codec.frame(ByteBufAllocator.DEFAULT, Op.NS_LIST, 0, 0, id, 0, 0, 0, 0, null), reused);
      assertThat(second.get(10, TimeUnit.SECONDS)).isEqualTo("answered");
    }
  }
}
