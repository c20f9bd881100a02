package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.vmd.common.Slices;
import io.vmd.protocol.ProtocolException;
import java.util.List;

/**
 * Splits transmission-phase bytes into requests. A WRITE of at most one {@link NbdSession#PIECE} is
 * passed on with its whole payload; a longer one (the protocol allows nearly 4 GiB when no block size
 * was negotiated) is passed on as its header and then as pieces that end on PIECE boundaries of the
 * export, each as soon as its bytes are here, so this decoder never holds more than one piece of
 * payload. A bad magic loses the framing: it throws {@link ProtocolException} and the session closes
 * this connection (only this one).
 */
final class NbdRequestDecoder extends ByteToMessageDecoder {
  static final int HEADER = NbdProtocol.REQUEST_HEADER;

  /** Where the next piece of a streamed WRITE goes, and how many of its bytes are still to come. */
  private long streamAt;
  private long streamLeft;

  /** A payload of at least {@link #GATHER} bytes is arriving: the cumulation composes instead of copying. */
  private boolean gathering;

  /** Payloads this long are gathered from the socket's reads without copying. */
  static final int GATHER = 64 << 10;

  NbdRequestDecoder() {
    // A large WRITE's payload arrives in many reads: the merging cumulator copied every byte of it once,
    // and again each time the cumulation grew, into fresh pool chunks the allocator zeroes; composing
    // the reads copies nothing. Small requests merge: slices of a composite have no memory address, so
    // writing one to a server's socket made a new NIO view of each of its parts (garbage per request).
    // A gathered payload is taken as slices of the reads themselves (Slices), which keep an address.
    setCumulator((alloc, cumulation, in) ->
        (gathering ? COMPOSITE_CUMULATOR : MERGE_CUMULATOR).cumulate(alloc, cumulation, in));
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (true) {
      if (streamLeft > 0) {
        int piece = (int) Math.min(streamLeft, NbdSession.PIECE - (streamAt & (NbdSession.PIECE - 1)));
        if (in.readableBytes() < piece) {
          gathering = piece >= GATHER;
          return;
        }
        gathering = false;
        out.add(NbdRequest.piece(streamAt, Slices.readRetainedSlice(in, piece)));
        streamAt += piece;
        streamLeft -= piece;
        continue;
      }
      if (in.readableBytes() < HEADER) {
        return;
      }
      int at = in.readerIndex();
      int magic = in.getInt(at + NbdProtocol.REQUEST_OFF_MAGIC);
      if (magic != NbdProtocol.REQUEST_MAGIC) {
        in.skipBytes(in.readableBytes());
        throw new ProtocolException(String.format("bad request magic 0x%08x", magic));
      }
      int flags = in.getUnsignedShort(at + NbdProtocol.REQUEST_OFF_FLAGS);
      int type = in.getUnsignedShort(at + NbdProtocol.REQUEST_OFF_TYPE);
      long handle = in.getLong(at + NbdProtocol.REQUEST_OFF_HANDLE);
      long offset = in.getLong(at + NbdProtocol.REQUEST_OFF_OFFSET);
      long length = in.getUnsignedInt(at + NbdProtocol.REQUEST_OFF_LENGTH);
      if (type == NbdProtocol.CMD_WRITE && length > NbdSession.PIECE) {
        in.skipBytes(HEADER);
        out.add(NbdRequest.streamedWrite(flags, handle, offset, length));
        streamAt = offset;
        streamLeft = length;
        continue;
      }
      ByteBuf payload = null;
      if (type == NbdProtocol.CMD_WRITE) {
        if (in.readableBytes() < HEADER + length) {
          gathering = length >= GATHER;
          return;
        }
        gathering = false;
        in.skipBytes(HEADER);
        payload = Slices.readRetainedSlice(in, (int) length);
      } else {
        in.skipBytes(HEADER);
      }
      out.add(NbdRequest.of(flags, type, handle, offset, length, payload));
    }
  }

  /** Whether a WRITE's payload is arriving: its pieces follow. */
  boolean streaming() {
    return streamLeft > 0;
  }
}
