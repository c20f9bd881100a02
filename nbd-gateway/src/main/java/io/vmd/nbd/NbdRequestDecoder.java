package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.vmd.protocol.ProtocolException;
import java.util.List;

/**
 * Splits transmission-phase bytes into requests. A bad magic, or a WRITE longer than the maximum
 * payload, loses the framing: it throws {@link ProtocolException} and the session closes this
 * connection (only this one).
 */
final class NbdRequestDecoder extends ByteToMessageDecoder {
  static final int HEADER = 28;

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (in.readableBytes() >= HEADER) {
      int at = in.readerIndex();
      int magic = in.getInt(at);
      if (magic != Nbd.REQUEST_MAGIC) {
        in.skipBytes(in.readableBytes());
        throw new ProtocolException(String.format("bad request magic 0x%08x", magic));
      }
      int flags = in.getUnsignedShort(at + 4);
      int type = in.getUnsignedShort(at + 6);
      long handle = in.getLong(at + 8);
      long offset = in.getLong(at + 16);
      long length = in.getUnsignedInt(at + 24);
      ByteBuf payload = null;
      if (type == Nbd.CMD_WRITE) {
        if (length > Nbd.MAX_PAYLOAD) {
          in.skipBytes(in.readableBytes());
          throw new ProtocolException("WRITE of " + length + " bytes is over the " + Nbd.MAX_PAYLOAD + "-byte maximum");
        }
        if (in.readableBytes() < HEADER + length) {
          return;
        }
        in.skipBytes(HEADER);
        payload = in.readRetainedSlice((int) length);
      } else {
        in.skipBytes(HEADER);
      }
      out.add(NbdRequest.of(flags, type, handle, offset, length, payload));
    }
  }
}
