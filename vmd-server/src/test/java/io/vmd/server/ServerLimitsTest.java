package io.vmd.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vmd.common.HostPort;
import io.vmd.protocol.Codec;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A peer that has not said HELLO holds almost nothing of a server: a small frame limit, a deadline,
 * and a cap on connections. Real sockets against a real server.
 */
class ServerLimitsTest {
  private static final ServerConfig.Limits TIGHT = new ServerConfig.Limits(3, Duration.ofMillis(500), 4096);
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private VmdServer server;

  private void start(ServerConfig.Limits limits) throws Exception {
    server = VmdServer.start(ServerConfig.builder(new HostPort("127.0.0.1", 0), 256 * Pages.PAGE_SIZE)
        .availabilityInterval(Duration.ofHours(1)).limits(limits).build(), registry);
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  private Socket connect() throws IOException {
    Socket s = new Socket("127.0.0.1", server.address().port());
    s.setSoTimeout(5000);
    return s;
  }

  /** Reads until the server closes the connection; fails if it is still open after the socket timeout. */
  private static void awaitClosed(Socket s) throws IOException {
    InputStream in = s.getInputStream();
    byte[] b = new byte[8192];
    try {
      while (in.read(b) >= 0) {
        // an error reply may come first
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server kept the connection open", e);
    } catch (IOException reset) {
      // closed with a reset: closed all the same
    }
  }

  private static void send(Socket s, ByteBuf frame) throws IOException {
    byte[] bytes = new byte[frame.readableBytes()];
    frame.readBytes(bytes);
    frame.release();
    s.getOutputStream().write(bytes);
    s.getOutputStream().flush();
  }

  private double refused(String reason) {
    var c = registry.find("vmd.server.connections.refused").tag("reason", reason).counter();
    return c == null ? 0 : c.count();
  }

  @Test
  void aPeerThatSaysNothingIsClosedAtTheHelloDeadline() throws Exception {
    start(TIGHT);
    long t0 = System.nanoTime();
    try (Socket s = connect()) {
      awaitClosed(s);
    }
    assertThat((System.nanoTime() - t0) / 1_000_000).isBetween(400L, 4000L);
    assertThat(refused("hello_timeout")).isEqualTo(1);
  }

  @Test
  void aLargeFrameBeforeHelloIsRefusedAndTheSameAfterHelloIsServed() throws Exception {
    // A HELLO deadline far past the socket's timeout: only the frame limit can close the connection.
    start(new ServerConfig.Limits(3, Duration.ofSeconds(30), 4096));
    byte[] page = new byte[Pages.PAGE_SIZE];
    try (Socket s = connect()) {
      // A 4 MiB length before HELLO: refused at once, not buffered.
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(Frame.MAX_FRAME - 4096);
      out.writeShort(Frame.MAGIC);
      out.flush();
      awaitClosed(s);
    }
    try (Socket s = connect()) {
      send(s, Codec.frame(ByteBufAllocator.DEFAULT, Op.HELLO, 0, 0, 1, 0, 0, 0, 0, b -> Codec.writeString(b, "vmd")));
      DataInputStream in = new DataInputStream(s.getInputStream());
      int length = in.readInt();
      in.skipNBytes(length);
      // After HELLO a frame of 16 pages (64 KiB, over the pre-HELLO limit) reaches the handler, which
      // answers it (NO_NAMESPACE: the namespace does not exist), and the connection lives on.
      send(s, Codec.frame(ByteBufAllocator.DEFAULT, Op.PUT, 0, 0, 2, 7, 0, 0, 16, b -> {
        for (int i = 0; i < 16; i++) {
          b.writeBytes(page);
        }
      }));
      int replyLength = in.readInt();
      byte[] reply = new byte[replyLength];
      in.readFully(reply);
      assertThat(replyLength).isGreaterThanOrEqualTo(Frame.HEADER_SIZE);
      assertThat(s.isClosed()).isFalse();
    }
  }

  @Test
  void connectionsPastTheCapAreClosedAtAccept() throws Exception {
    start(new ServerConfig.Limits(3, Duration.ofSeconds(30), 4096));
    List<Socket> held = new ArrayList<>();
    try {
      for (int i = 0; i < 3; i++) {
        held.add(connect());
      }
      // Let the server accept the three before the fourth comes.
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (server.connectionCount() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      try (Socket fourth = connect()) {
        awaitClosed(fourth);
      }
      assertThat(refused("limit")).isEqualTo(1);
      // The three held ones are still served.
      send(held.get(0), Codec.frame(ByteBufAllocator.DEFAULT, Op.HELLO, 0, 0, 1, 0, 0, 0, 0,
          b -> Codec.writeString(b, "vmd")));
      assertThat(new DataInputStream(held.get(0).getInputStream()).readInt()).isGreaterThanOrEqualTo(Frame.HEADER_SIZE);
    } finally {
      for (Socket s : held) {
        s.close();
      }
    }
  }
}
