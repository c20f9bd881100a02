package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The request decoder over arbitrary socket reads: large WRITE payloads are gathered from many reads
 * without copying, small requests merge, and every payload handed on stays byte-exact after the reads
 * that follow it (a gathered payload must not share memory the next read reuses).
 */
class NbdRequestDecoderTest {

  @Test
  void requestsSplitAtRandomPointsComeOutWholeAndByteExact() {
    long seed = System.nanoTime();
    System.out.println("NbdRequestDecoderTest seed " + seed);
    Random random = new Random(seed);
    // 4 KiB writes and reads around WRITEs below, at and above the gathering threshold.
    int[] lengths = {4096, NbdRequestDecoder.GATHER - 4096, NbdRequestDecoder.GATHER, 1 << 20, 4096, 128 << 10, 8192};
    ByteBuf stream = PooledByteBufAllocator.DEFAULT.heapBuffer();
    List<byte[]> payloads = new ArrayList<>();
    for (int i = 0; i < lengths.length; i++) {
      byte[] p = new byte[lengths[i]];
      random.nextBytes(p);
      payloads.add(p);
      header(stream, NbdProtocol.CMD_WRITE, i, (long) i << 20, p.length).writeBytes(p);
      header(stream, NbdProtocol.CMD_READ, 100 + i, 0, 4096);
    }
    EmbeddedChannel ch = new EmbeddedChannel(new NbdRequestDecoder());
    ch.config().setAllocator(PooledByteBufAllocator.DEFAULT);
    List<NbdRequest> got = new ArrayList<>();
    while (stream.isReadable()) {
      int n = Math.min(stream.readableBytes(), 1 + random.nextInt(random.nextBoolean() ? 300 : 70_000));
      ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer(n);
      stream.readBytes(read, n);
      ch.writeInbound(read);
      for (Object o; (o = ch.readInbound()) != null; ) {
        got.add((NbdRequest) o);
      }
    }
    stream.release();
    assertThat(got).hasSize(2 * lengths.length);
    for (int i = 0; i < lengths.length; i++) {
      NbdRequest w = got.get(2 * i);
      assertThat(w.type).isEqualTo(NbdProtocol.CMD_WRITE);
      assertThat(w.handleId).isEqualTo(i);
      assertThat(w.offset).isEqualTo((long) i << 20);
      assertThat(ByteBufUtil.getBytes(w.payload)).as("payload %d (%d bytes), seed %d", i, lengths[i], seed)
          .isEqualTo(payloads.get(i));
      NbdRequest r = got.get(2 * i + 1);
      assertThat(r.type).isEqualTo(NbdProtocol.CMD_READ);
      assertThat(r.handleId).isEqualTo(100 + i);
      assertThat(r.payload).isNull();
    }
    for (NbdRequest r : got) {
      r.releasePayload();
    }
    assertThat(ch.finishAndReleaseAll()).isFalse();
  }

  private static ByteBuf header(ByteBuf out, int type, long handle, long offset, int length) {
    return out.writeInt(NbdProtocol.REQUEST_MAGIC).writeShort(0).writeShort(type).writeLong(handle).writeLong(offset)
        .writeInt(length);
  }
}
