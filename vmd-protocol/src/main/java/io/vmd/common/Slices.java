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
 * one part's slice when the range lies in one, else a composite of the parts' slices, which
 * {@link #addSlices} and {@link #writeAllButLastPart} take apart again. Nothing is copied.
 */
public final class Slices {
  private Slices() {}

  /** {@code length} bytes of {@code buf} from {@code index}, retained; see the class comment. */
  public static ByteBuf retainedSlice(ByteBuf buf, int index, int length) {
    if (!(buf instanceof CompositeByteBuf) || length == 0) {
      return sliceOfRoot(buf, index, length);
    }
    CompositeByteBuf composite = (CompositeByteBuf) buf;
    checkRange(composite, index, length);
    int c = composite.toComponentIndex(index);
    int at = index - composite.toByteIndex(c);
    // The component's bytes as a buffer of their own, indexed from 0 (cached by the composite).
    ByteBuf part = composite.internalComponent(c);
    if (length <= part.capacity() - at) {
      return sliceOfRoot(part, at, length);
    }
    CompositeByteBuf parts = composite.alloc().compositeDirectBuffer(Integer.MAX_VALUE);
    try {
      addParts(parts, composite, c, at, length);
      return parts;
    } catch (RuntimeException e) {
      parts.release();
      throw e;
    }
  }

  /**
   * Adds {@code length} bytes of {@code src} from {@code index} to the end of {@code target} as
   * retained slices ({@code src}'s parts' slices when it is a composite); {@code src} keeps its own
   * reference. No composite in between: a reply joined from page runs adds each run this way.
   */
  public static void addSlices(CompositeByteBuf target, ByteBuf src, int index, int length) {
    if (!(src instanceof CompositeByteBuf)) {
      target.addComponent(true, sliceOfRoot(src, index, length));
      return;
    }
    CompositeByteBuf composite = (CompositeByteBuf) src;
    checkRange(composite, index, length);
    int c = composite.toComponentIndex(index);
    addParts(target, composite, c, index - composite.toByteIndex(c), length);
  }

  /** Adds slices of {@code length} bytes of {@code composite}'s parts, from byte {@code at} of part {@code c}. */
  private static void addParts(CompositeByteBuf target, CompositeByteBuf composite, int c, int at,
      int length) {
    for (int left = length; left > 0; at = 0) {
      ByteBuf part = composite.internalComponent(c++);
      int n = Math.min(left, part.capacity() - at);
      if (n > 0) {
        target.addComponent(true, sliceOfRoot(part, at, n));
        left -= n;
      }
    }
  }

  private static void checkRange(ByteBuf buf, int index, int length) {
    if (index < 0 || length < 0 || index > buf.capacity() - length) {
      throw new IndexOutOfBoundsException("range " + index + "+" + length + " outside a buffer of "
          + buf.capacity());
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
      checkRange(buf, index, length);
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
