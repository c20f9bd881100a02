package io.vmd.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.vmd.common.Slices;
import java.util.List;

/**
 * Splits the byte stream into frames. Emits each frame body (header + payload, without the length
 * prefix) as a retained slice of the inbound buffer: no copy and, with pooled buffers, no garbage.
 * A length outside [header, max] means framing is lost: it throws {@link ProtocolException}. A server
 * starts a connection with a small max, raised by {@link #authenticated} once the peer has proved
 * itself, so that a peer that has not cannot make it buffer a 4 MiB frame.
 */
public final class FrameDecoder extends ByteToMessageDecoder {
  private int maxFrame;
  private final int maxAuthenticated;
  private boolean forwarding;

  public FrameDecoder() {
    this(Frame.MAX_FRAME);
  }

  public FrameDecoder(int maxFrame) {
    this(maxFrame, maxFrame);
  }

  /** Frames of at most {@code untilAuthenticated} bytes until {@link #authenticated}, then {@code max}. */
  public FrameDecoder(int untilAuthenticated, int max) {
    this.maxFrame = untilAuthenticated;
    this.maxAuthenticated = max;
    // Page frames are up to 4 MiB and arrive in many reads: gather them without copying.
    setCumulator(COMPOSITE_CUMULATOR);
  }

  /**
   * For a peer whose frames' bytes are written on to another socket (the gateway's page replies): a
   * frame spanning socket reads comes as a composite of the reads' slices ({@link Slices}), which a
   * write takes apart without garbage. A consumer that copies frames out is better served by the
   * default, one slice of the gathered reads (fewer objects per frame).
   */
  public FrameDecoder forwarding() {
    forwarding = true;
    return this;
  }

  /** The peer has proved itself: frames up to the full maximum from now on. */
  public void authenticated() {
    maxFrame = maxAuthenticated;
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (in.readableBytes() >= Frame.LENGTH_FIELD) {
      int start = in.readerIndex();
      int length = in.getInt(start);
      if (length < Frame.HEADER_SIZE || length > maxFrame) {
        in.skipBytes(in.readableBytes());
        throw new ProtocolException(
            "frame length " + length + " outside " + Frame.HEADER_SIZE + ".." + maxFrame);
      }
      if (in.readableBytes() >= 2 + Frame.LENGTH_FIELD
          && in.getShort(start + Frame.LENGTH_FIELD) != Frame.MAGIC) {
        in.skipBytes(in.readableBytes());
        throw new ProtocolException(
            String.format("bad magic 0x%04x", in.getShort(start + Frame.LENGTH_FIELD) & 0xffff));
      }
      if (in.readableBytes() < Frame.LENGTH_FIELD + length) {
        return;
      }
      in.skipBytes(Frame.LENGTH_FIELD);
      out.add(forwarding ? Slices.readRetainedSlice(in, length) : in.readRetainedSlice(length));
    }
  }
}
