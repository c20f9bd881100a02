package io.vmd.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vmd.common.HostPort;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.FrameDecoder;
import io.vmd.protocol.FrameTestSupport;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Hostile input against the real request handler: the server answers or closes, never fails. */
class ServerFuzzTest {
  private VmdServer server;

  @BeforeEach
  void start() throws Exception {
    // No availability pushes: they would land in the embedded channels after the test let them go.
    server = VmdServer.start(ServerConfig.inMemory(new HostPort("127.0.0.1", 0), 256 * Pages.PAGE_SIZE)
        .withAvailabilityInterval(Duration.ofHours(1)), new SimpleMeterRegistry());
    for (int id = 1; id <= 4; id++) {
      server.namespaces().create(new NamespaceRecord(id, "ns" + id, 1 << 20, 1, 0));
    }
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private EmbeddedChannel helloChannel() {
    EmbeddedChannel ch = new EmbeddedChannel(new FrameDecoder(), new ServerHandler(server));
    ch.writeInbound(Codec.frame(Unpooled.buffer().alloc(), Op.HELLO, 0, 0, 1, 0, 0, 0, 0,
        b -> Codec.writeString(b, "vmd")));
    ByteBuf reply = ch.readOutbound();
    assertThat(reply).isNotNull();
    reply.release();
    return ch;
  }

  @Test
  void twentyThousandMutatedFramesNeverBreakTheServer() throws Exception {
    long seed = Long.getLong("fuzz.seed", System.nanoTime());
    System.out.println("ServerFuzzTest seed " + seed + " (rerun with -Dfuzz.seed=" + seed + ")");
    Random r = new Random(seed);
    int frames = 20_000;
    int answered = 0;
    int closed = 0;
    int waiting = 0;
    for (int i = 0; i < frames; i++) {
      // Each frame on its own connection, so that one frame's damage (say, a huge length that makes
      // the decoder wait) cannot hide the frames after it.
      EmbeddedChannel ch = helloChannel();
      byte[] input = i % 4 == 0 ? FrameTestSupport.validRequest(r) : FrameTestSupport.mutate(FrameTestSupport.validRequest(r), r);
      ch.writeInbound(Unpooled.wrappedBuffer(input));
      ch.checkException();
      // The replies as the socket would carry them: a lent GET is written as several messages.
      CompositeByteBuf stream = Unpooled.compositeBuffer(Integer.MAX_VALUE);
      ByteBuf out;
      while ((out = ch.readOutbound()) != null) {
        stream.addComponent(true, out);
      }
      boolean replied = stream.isReadable();
      while (stream.isReadable()) {
        int length = stream.readInt();
        ByteBuf frame = stream.readSlice(length);
        assertThat(Frame.checkReply(frame)).as("server reply to frame %d (seed %d)", i, seed).isNull();
      }
      stream.release();
      if (!ch.isOpen()) {
        closed++;
      } else if (replied) {
        answered++;
      } else {
        waiting++;
      }
      ch.finishAndReleaseAll();
    }
    System.out.printf("server fuzz: %d frames: %d answered, %d closed the connection, %d await more bytes%n",
        frames, answered, closed, waiting);
    assertThat(answered + closed + waiting).isEqualTo(frames);
    assertThat(answered).isGreaterThan(frames / 5);
    assertThat(closed).isGreaterThan(frames / 20);
    // Capacity accounting survived: used pages never exceed capacity and match the namespaces.
    // Over every namespace the server has now: the fuzz creates namespaces of its own (NS_CREATE with
    // a random id) and writes pages into them.
    long sum = 0;
    for (NamespaceRecord ns : server.namespaces().list()) {
      sum += server.store().pageCount(ns.id());
    }
    assertThat(server.store().usedPages()).isEqualTo(sum).isLessThanOrEqualTo(256);
    // And it still serves a clean client byte-exact, in a namespace of its own (the fuzz may have
    // deleted the others) and after making room (it may have filled the store).
    for (int id = 1; id <= 4; id++) {
      server.store().deleteNamespace(id);
    }
    // An id the fuzz did not take: its random NS_CREATE frames may have made any small one.
    int clean = server.namespaces().list().stream().mapToInt(NamespaceRecord::id).max().orElse(0) + 1;
    server.namespaces().create(new NamespaceRecord(clean, "clean", 1 << 20, 1, 0));
    EmbeddedChannel cleanChannel = helloChannel();
    ByteBuf put = Unpooled.buffer();
    Frame.writeHeader(put, Op.PUT, 0, 0, 7, clean, 0, 10, 1, Pages.PAGE_SIZE);
    byte[] page = new byte[Pages.PAGE_SIZE];
    r.nextBytes(page);
    put.writeBytes(page);
    cleanChannel.writeInbound(put);
    ByteBuf putReply = cleanChannel.readOutbound();
    assertThat(Frame.status(putReply.skipBytes(Frame.LENGTH_FIELD))).isZero();
    putReply.release();
    ByteBuf get = Unpooled.buffer();
    Frame.writeHeader(get, Op.GET, 0, 0, 8, clean, 0, 10, 1, 0);
    cleanChannel.writeInbound(get);
    ByteBuf getReply = cleanChannel.readOutbound();
    getReply.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.status(getReply)).isZero();
    byte[] back = new byte[Pages.PAGE_SIZE];
    getReply.getBytes(Frame.payloadIndex(getReply) + Frame.bitmapBytes(1), back);
    assertThat(back).isEqualTo(page);
    getReply.release();
    cleanChannel.finishAndReleaseAll();
  }

  @Test
  void malformedFrameOverTcpGetsAnErrorAndClosesOnlyItsConnection() throws Exception {
    HostPort at = server.address();
    try (Socket good = new Socket(at.host(), at.port()); Socket bad = new Socket(at.host(), at.port())) {
      DataOutputStream goodOut = new DataOutputStream(good.getOutputStream());
      DataInputStream goodIn = new DataInputStream(good.getInputStream());
      send(goodOut, Codec.frame(Unpooled.buffer().alloc(), Op.HELLO, 0, 0, 1, 0, 0, 0, 0, b -> Codec.writeString(b, "vmd")));
      assertThat(readFrameStatus(goodIn)).isZero();

      DataOutputStream badOut = new DataOutputStream(new BufferedOutputStream(bad.getOutputStream()));
      DataInputStream badIn = new DataInputStream(bad.getInputStream());
      badOut.writeInt(Frame.HEADER_SIZE);
      badOut.writeShort(0x0BAD);
      badOut.write(new byte[Frame.HEADER_SIZE - 2]);
      badOut.flush();
      assertThat(readFrameStatus(badIn)).isEqualTo(ErrorCode.BAD_REQUEST.code);
      assertThat(closedByPeer(badIn)).isTrue();

      // The other connection is unaffected.
      send(goodOut, Codec.frame(Unpooled.buffer().alloc(), Op.NS_LIST, 0, 0, 2, 0, 0, 0, 0, null));
      assertThat(readFrameStatus(goodIn)).isZero();
    }
  }

  /** EOF, or a reset when bytes were still in flight as the server closed: either way, closed. */
  private static boolean closedByPeer(DataInputStream in) throws Exception {
    try {
      return in.read() == -1;
    } catch (SocketException reset) {
      return true;
    }
  }

  private static void send(DataOutputStream out, ByteBuf frame) throws Exception {
    byte[] b = new byte[frame.readableBytes()];
    frame.readBytes(b);
    frame.release();
    out.write(b);
    out.flush();
  }

  private static int readFrameStatus(DataInputStream in) throws Exception {
    int len = in.readInt();
    byte[] body = new byte[len];
    in.readFully(body);
    return Frame.status(Unpooled.wrappedBuffer(body));
  }
}
