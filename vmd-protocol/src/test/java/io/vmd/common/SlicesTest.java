package io.vmd.common;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vmd.protocol.Frame;
import io.vmd.protocol.FrameDecoder;
import io.vmd.protocol.Op;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SlicesTest {
  private static final PooledByteBufAllocator ALLOC = PooledByteBufAllocator.DEFAULT;

  /** A direct buffer of {@code n} bytes numbered from {@code from}. */
  private static ByteBuf numbered(int from, int n) {
    ByteBuf b = ALLOC.directBuffer(n);
    for (int i = 0; i < n; i++) {
      b.writeByte(from + i);
    }
    return b;
  }

  /** A composite of direct parts of the given sizes, its bytes numbered 0, 1, 2, ... */
  private static CompositeByteBuf parts(List<ByteBuf> made, int... sizes) {
    CompositeByteBuf c = ALLOC.compositeDirectBuffer(Integer.MAX_VALUE);
    int at = 0;
    for (int n : sizes) {
      ByteBuf p = numbered(at, n);
      made.add(p);
      c.addComponent(true, p);
      at += n;
    }
    return c;
  }

  private static void assertNumbered(ByteBuf b, int from, int n) {
    assertThat(b.readableBytes()).isEqualTo(n);
    for (int i = 0; i < n; i++) {
      assertThat(b.getByte(b.readerIndex() + i)).as("byte %d", i).isEqualTo((byte) (from + i));
    }
  }

  @Test
  void aSliceOfAViewIsASliceOfTheBufferItViews() {
    // Built outside any allocator, so that no leak-tracking wrapper hides the view.
    ByteBuf root = Unpooled.wrappedBuffer(ByteBuffer.allocateDirect(64));
    for (int i = 0; i < 64; i++) {
      root.setByte(i, i);
    }
    ByteBuf view = root.slice(8, 40);
    ByteBuf s = Slices.retainedSlice(view, 4, 16);
    assertThat(s.unwrap()).isSameAs(root);
    assertThat(root.refCnt()).isEqualTo(2);
    assertNumbered(s, 12, 16);
    s.release();
    assertThat(root.refCnt()).isEqualTo(1);
    root.release();
  }

  @Test
  void aRangeInsideOnePartIsASliceOfThatPart() {
    List<ByteBuf> made = new ArrayList<>();
    CompositeByteBuf c = parts(made, 100, 200, 300);
    ByteBuf s = Slices.retainedSlice(c, 120, 150);
    assertThat(s).isNotInstanceOf(CompositeByteBuf.class);
    assertThat(s.hasMemoryAddress()).isTrue();
    c.release();
    assertNumbered(s, 120, 150);
    assertThat(made.get(1).refCnt()).isEqualTo(1);
    s.release();
    assertThat(made).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  @Test
  void aRangeAcrossPartsIsACompositeOfTheirSlicesAndOutlivesTheSource() {
    List<ByteBuf> made = new ArrayList<>();
    CompositeByteBuf c = parts(made, 100, 200, 300);
    ByteBuf s = Slices.retainedSlice(c, 50, 350);
    assertThat(s).isInstanceOf(CompositeByteBuf.class);
    CompositeByteBuf pieces = (CompositeByteBuf) s;
    assertThat(pieces.numComponents()).isEqualTo(3);
    for (int i = 0; i < 3; i++) {
      assertThat(pieces.internalComponent(i).hasMemoryAddress()).isTrue();
    }
    c.release();
    assertNumbered(s, 50, 350);
    s.release();
    assertThat(made).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  @Test
  void randomRangesOfRandomPartsReadTheSameBytes() {
    long seed = System.nanoTime();
    System.out.println("SlicesTest seed " + seed);
    Random random = new Random(seed);
    for (int round = 0; round < 200; round++) {
      List<ByteBuf> made = new ArrayList<>();
      int[] sizes = new int[1 + random.nextInt(6)];
      int total = 0;
      for (int i = 0; i < sizes.length; i++) {
        sizes[i] = 1 + random.nextInt(5000);
        total += sizes[i];
      }
      CompositeByteBuf c = parts(made, sizes);
      List<ByteBuf> slices = new ArrayList<>();
      List<int[]> ranges = new ArrayList<>();
      for (int k = 0; k < 5; k++) {
        int from = random.nextInt(total);
        int n = 1 + random.nextInt(total - from);
        slices.add(Slices.retainedSlice(c, from, n));
        ranges.add(new int[] {from, n});
      }
      c.release();
      for (int k = 0; k < slices.size(); k++) {
        assertNumbered(slices.get(k), ranges.get(k)[0], ranges.get(k)[1]);
        slices.get(k).release();
      }
      assertThat(made).as("seed %d round %d", seed, round).allSatisfy(p -> assertThat(p.refCnt()).isZero());
    }
  }

  @Test
  void slicesAddedToAReplyAreEachAddressableAndOutliveTheirSources() {
    List<ByteBuf> made = new ArrayList<>();
    CompositeByteBuf gathered = parts(made, 100, 200);
    ByteBuf single = numbered(300, 50);
    made.add(single);
    CompositeByteBuf reply = ALLOC.compositeDirectBuffer(Integer.MAX_VALUE);
    Slices.addSlices(reply, gathered, 10, 290);
    Slices.addSlices(reply, single, 0, 50);
    gathered.release();
    single.release();
    assertThat(reply.numComponents()).isEqualTo(3);
    for (int i = 0; i < reply.numComponents(); i++) {
      assertThat(reply.internalComponent(i).hasMemoryAddress()).isTrue();
    }
    assertNumbered(reply, 10, 340);
    reply.release();
    assertThat(made).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  @Test
  void aWholeCompositeIsWrittenAsItsParts() {
    EmbeddedChannel ch = new EmbeddedChannel();
    List<ByteBuf> made = new ArrayList<>();
    CompositeByteBuf c = parts(made, 10, 20, 30);
    ByteBuf last = Slices.writeAllButLastPart(ch, c);
    ch.writeAndFlush(last);
    ByteBuf joined = Unpooled.buffer();
    int messages = 0;
    for (ByteBuf m; (m = ch.readOutbound()) != null; messages++) {
      assertThat(m).isNotInstanceOf(CompositeByteBuf.class);
      joined.writeBytes(m);
      m.release();
    }
    assertThat(messages).isEqualTo(3);
    assertNumbered(joined, 0, 60);
    assertThat(made).allSatisfy(p -> assertThat(p.refCnt()).isZero());

    ByteBuf plain = numbered(0, 8);
    assertThat(Slices.writeAllButLastPart(ch, plain)).isSameAs(plain);
    CompositeByteBuf partlyRead = parts(new ArrayList<>(), 4, 4);
    partlyRead.skipBytes(1);
    assertThat(Slices.writeAllButLastPart(ch, partlyRead)).isSameAs(partlyRead);
    assertThat((Object) ch.readOutbound()).isNull();
    plain.release();
    partlyRead.release();
    ch.finishAndReleaseAll();
  }

  @Test
  void aForwardingDecoderGivesAFrameSpanningReadsAsTheReadsSlices() {
    ByteBuf out = Unpooled.buffer();
    Frame.writeHeader(out, Op.GET, 0, 0, 42L, 7, 1, 0L, 2, 2 * 4096);
    for (int i = 0; i < 2 * 4096; i++) {
      out.writeByte(i * 31);
    }
    byte[] wire = ByteBufUtil.getBytes(out);
    for (boolean forwarding : new boolean[] {true, false}) {
      FrameDecoder decoder = new FrameDecoder();
      EmbeddedChannel ch = new EmbeddedChannel(forwarding ? decoder.forwarding() : decoder);
      // Three socket reads, none holding the whole frame.
      int[] cuts = {0, 1000, 5000, wire.length};
      for (int i = 0; i < 3; i++) {
        ByteBuf read = ALLOC.directBuffer(cuts[i + 1] - cuts[i]);
        read.writeBytes(wire, cuts[i], cuts[i + 1] - cuts[i]);
        ch.writeInbound(read);
      }
      ByteBuf f = ch.readInbound();
      assertThat(Frame.requestId(f)).isEqualTo(42L);
      assertThat(ByteBufUtil.getBytes(f)).isEqualTo(Arrays.copyOfRange(wire, Frame.LENGTH_FIELD, wire.length));
      if (forwarding) {
        assertThat(f).isInstanceOf(CompositeByteBuf.class);
        CompositeByteBuf pieces = (CompositeByteBuf) f;
        assertThat(pieces.numComponents()).isEqualTo(3);
        for (int i = 0; i < 3; i++) {
          assertThat(pieces.internalComponent(i).nioBufferCount()).isEqualTo(1);
        }
      } else {
        assertThat(f.nioBufferCount()).isEqualTo(3);
      }
      f.release();
      assertThat(ch.finishAndReleaseAll()).isFalse();
    }
  }
}
