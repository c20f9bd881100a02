package io.vmd.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.List;
import org.junit.jupiter.api.Test;

class FrameRoundTripTest {

  @Test
  void headerFieldsSurviveEncodeAndDecode() {
    ByteBuf out = Unpooled.buffer();
    Frame.writeHeader(out, Op.PUT, Frame.FLAG_MORE, 3, 0x0102030405060708L, 77, 9, 123456789L, 2,
        Frame.firstStamp(9) + 5, 2 * 4096);
    out.writeZero(2 * 4096);
    EmbeddedChannel ch = new EmbeddedChannel(new FrameDecoder());
    // Split delivery: the decoder must wait for the whole frame.
    ch.writeInbound(out.readRetainedSlice(10));
    assertThat((Object) ch.readInbound()).isNull();
    ch.writeInbound(out);
    ByteBuf f = ch.readInbound();
    assertThat(Frame.op(f)).isEqualTo(Op.PUT);
    assertThat(Frame.flags(f)).isEqualTo(Frame.FLAG_MORE);
    assertThat(Frame.status(f)).isEqualTo(3);
    assertThat(Frame.requestId(f)).isEqualTo(0x0102030405060708L);
    assertThat(Frame.namespace(f)).isEqualTo(77);
    assertThat(Frame.epoch(f)).isEqualTo(9);
    assertThat(Frame.firstPage(f)).isEqualTo(123456789L);
    assertThat(Frame.pageCount(f)).isEqualTo(2);
    assertThat(Frame.stamp(f)).isEqualTo((9L << 40) + 5);
    assertThat(Frame.payloadLength(f)).isEqualTo(2 * 4096);
    assertThat(Frame.checkRequest(f)).isNull();
    f.release();
  }

  @Test
  void controlPayloadsRoundTrip() {
    ByteBuf b = Unpooled.buffer();
    List<NamespaceRecord> list = List.of(new NamespaceRecord(1, "vm1", 1 << 30, 2, 5),
        new NamespaceRecord(2, "vm-2.swap", 4096, 1, 0));
    Codec.writeNamespaces(b, list);
    assertThat(Codec.readNamespaces(b)).isEqualTo(list);
    Hello h = new Hello("vmd", 42, "s-1", Frame.MAX_FRAME, new Availability(100, 40, 60, 10));
    Codec.writeHello(b, h);
    assertThat(Codec.readHello(b)).isEqualTo(h);
    ByteBuf err = Codec.error(Unpooled.buffer().alloc(), Op.GET, 5, 1, ErrorCode.NO_SPACE, "full");
    err.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.status(err)).isEqualTo(ErrorCode.NO_SPACE.code);
    assertThat(Codec.errorMessage(err)).isEqualTo("full");
    assertThat(Frame.checkReply(err)).isNull();
    b.release();
    err.release();
  }

  @Test
  void getReplyBitmapMustMatchPayload() {
    ByteBuf f = Unpooled.buffer();
    Frame.writeHeader(f, Op.GET, Frame.FLAG_REPLY, 0, 1, 1, 0, 0, 3, 8 + 4096);
    f.writeLong(0b101); // says two pages are present, but only one follows
    f.writeZero(4096);
    f.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.checkReply(f)).contains("bitmap");
    f.release();
  }

  @Test
  void stampedGetReplyAndListReplyLengthsAreChecked() {
    ByteBuf f = Unpooled.buffer();
    Frame.writeHeader(f, Op.GET, Frame.FLAG_REPLY | Frame.FLAG_STAMPS, 0, 1, 1, 0, 0, 3, 8 + 2 * 4096 + 16);
    f.writeLong(0b101).writeZero(2 * 4096).writeLong(7).writeLong(8);
    f.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.checkReply(f)).isNull();
    ByteBuf unstamped = Unpooled.buffer();
    Frame.writeHeader(unstamped, Op.GET, Frame.FLAG_REPLY, 0, 1, 1, 0, 0, 3, 8 + 2 * 4096 + 16);
    unstamped.writeLong(0b101).writeZero(2 * 4096 + 16);
    unstamped.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.checkReply(unstamped)).contains("bitmap");
    ByteBuf list = Unpooled.buffer();
    Frame.writeHeader(list, Op.LIST, Frame.FLAG_REPLY, 0, 1, 1, 0, 0, 2, 24);
    list.writeZero(24);
    list.skipBytes(Frame.LENGTH_FIELD);
    assertThat(Frame.checkReply(list)).contains("2 entries");
    f.release();
    unstamped.release();
    list.release();
  }

  @Test
  void oversizedOrBadMagicFrameIsAProtocolViolation() {
    EmbeddedChannel ch = new EmbeddedChannel(new FrameDecoder());
    ByteBuf big = Unpooled.buffer().writeInt(Frame.MAX_FRAME + 1).writeShort(Frame.MAGIC);
    assertThatThrownBy(() -> ch.writeInbound(big)).isInstanceOf(DecoderException.class)
        .hasCauseInstanceOf(ProtocolException.class).hasMessageContaining("outside");
    EmbeddedChannel ch2 = new EmbeddedChannel(new FrameDecoder());
    ByteBuf magic = Unpooled.buffer().writeInt(Frame.HEADER_SIZE).writeShort(0x1234);
    assertThatThrownBy(() -> ch2.writeInbound(magic)).hasCauseInstanceOf(ProtocolException.class)
        .hasMessageContaining("magic");
  }
}
