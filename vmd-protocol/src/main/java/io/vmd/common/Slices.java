package io.vmd.common;

import io.netty.buffer.AbstractDerivedByteBuf;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.WrappedByteBuf;
import io.netty.channel.Channel;

/**
 * Retained slices that the epoll transport writes as they are. A slice of a {@link CompositeByteBuf}
 * (a frame or payload gathered from several socket reads) has no memory address: each write of it,
 * and each retry of a partial write, builds an array of {@code ByteBuffer}s over its parts, which was
 * most of what the gateway allocated per 1 MiB request. These slice the composite's parts instead:
 * one part's slice when the range lies in one, else a composite of the parts' slices, which the
 * receiver can take apart again ({@link CompositeByteBuf#addFlattenedComponents}). Nothing is copied.
 */
public final class Slices {
  private Slices() {}

  /** {@code length} bytes of {@code buf} from {@code index}, retained; see the class comment. */
  public static ByteBuf retainedSlice(ByteBuf buf, int index, int length) {
    if (!(buf instanceof CompositeByteBuf) || length == 0) {
      return sliceOfRoot(buf, index, length);
    }
    CompositeByteBuf composite = (CompositeByteBuf) buf;
    if (index < 0 || length < 0 || index > composite.capacity() - length) {
      throw new IndexOutOfBoundsException("range " + index + "+" + length + " outside a buffer of "
          + composite.capacity());
    }
    int c = composite.toComponentIndex(index);
    int at = index - composite.toByteIndex(c);
    // The component's bytes as a buffer of their own, indexed from 0 (cached by the composite).
    ByteBuf part = composite.internalComponent(c);
    if (length <= part.capacity() - at) {
      return sliceOfRoot(part, at, length);
    }
    CompositeByteBuf parts = composite.alloc().compositeDirectBuffer(Integer.MAX_VALUE);
    try {
      for (int left = length;;) {
        int n = Math.min(left, part.capacity() - at);
        if (n > 0) {
          parts.addComponent(true, sliceOfRoot(part, at, n));
        }
        left -= n;
        if (left == 0) {
          return parts;
        }
        part = composite.internalComponent(++c);
        at = 0;
      }
    } catch (RuntimeException e) {
      parts.release();
      throw e;
    }
  }

  /**
   * For a plain view (an unpooled slice or duplicate, which shares its buffer's reference count), a
   * retained slice of the buffer it views, when both have memory addresses: a slice of a view is a new
   * object each time, a slice of a pooled buffer comes from a recycler. (A view's place in its buffer
   * is not public; the addresses tell it.) Leak-tracking wrappers are never looked through.
   */
  private static ByteBuf sliceOfRoot(ByteBuf buf, int index, int length) {
    ByteBuf root = buf.unwrap();
    if (buf instanceof AbstractDerivedByteBuf && root != null && !(root instanceof WrappedByteBuf)
        && buf.hasMemoryAddress() && root.hasMemoryAddress()) {
      if (index < 0 || length < 0 || index > buf.capacity() - length) {
        throw new IndexOutOfBoundsException("range " + index + "+" + length + " outside a buffer of "
            + buf.capacity());
      }
      long offset = buf.memoryAddress() - root.memoryAddress();
      if (offset >= 0 && offset + index + length <= root.capacity()) {
        return root.retainedSlice((int) offset + index, length);
      }
    }
    return buf.retainedSlice(index, length);
  }

  /** {@link #retainedSlice} of the next {@code length} readable bytes, which it skips. */
  public static ByteBuf readRetainedSlice(ByteBuf buf, int length) {
    ByteBuf slice = retainedSlice(buf, buf.readerIndex(), length);
    buf.skipBytes(length);
    return slice;
  }

  /**
   * Writes the parts of a whole composite {@code buf} but the last as messages of their own (void
   * promises, no flush) and returns the last part, for the caller to write after them; any other
   * buffer is returned as it is. The epoll transport hands each part's memory address to the kernel;
   * a composite it would turn into a new array of {@code ByteBuffer}s on every write attempt.
   */
  public static ByteBuf writeAllButLastPart(Channel channel, ByteBuf buf) {
    if (!(buf instanceof CompositeByteBuf) || buf.readerIndex() != 0 || buf.writerIndex() != buf.capacity()) {
      return buf;
    }
    CompositeByteBuf parts = (CompositeByteBuf) buf;
    int n = parts.numComponents();
    if (n < 2) {
      return buf;
    }
    for (int i = 0; i < n - 1; i++) {
      channel.write(parts.internalComponent(i).retain(), channel.voidPromise());
    }
    ByteBuf last = parts.internalComponent(n - 1).retain();
    parts.release();
    return last;
  }
}
