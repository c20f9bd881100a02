package io.vmd.common;

import io.netty.buffer.ByteBuf;
import io.netty.util.internal.PlatformDependent;
import java.nio.ByteBuffer;

/**
 * Copies bytes into a buffer that other threads are filling at the same time (replies from several
 * servers land in one destination, each in its own range). Netty buffers are not safe for that even
 * on disjoint ranges: some implementations copy through one shared internal NIO buffer. This copies
 * memory directly when both sides expose an address, else through a private NIO view.
 */
public final class PageCopy {
  /** Raw copies need Netty's Unsafe access; newer JDKs may run Netty without it, buffers keep addresses. */
  private static final boolean RAW = PlatformDependent.hasUnsafe();

  private PageCopy() {}

  public static void copy(ByteBuf src, int srcIndex, ByteBuf dst, int dstIndex, int length) {
    if (RAW && src.hasMemoryAddress() && dst.hasMemoryAddress()) {
      check(src, srcIndex, length);
      check(dst, dstIndex, length);
      PlatformDependent.copyMemory(src.memoryAddress() + srcIndex, dst.memoryAddress() + dstIndex, length);
    } else if (RAW && dst.hasMemoryAddress()) {
      // A frame gathered from several reads (a slice of a composite): every component copies
      // straight to the destination's address; nothing goes through the destination's own NIO view.
      check(dst, dstIndex, length);
      src.getBytes(srcIndex, dst, dstIndex, length);
    } else {
      src.getBytes(srcIndex, dst.nioBuffer(dstIndex, length));
    }
  }

  /** Zeros a range of a buffer other threads are filling elsewhere. */
  public static void zero(ByteBuf dst, int dstIndex, int length) {
    if (RAW && dst.hasMemoryAddress()) {
      check(dst, dstIndex, length);
      PlatformDependent.setMemory(dst.memoryAddress() + dstIndex, length, (byte) 0);
    } else {
      ByteBuffer view = dst.nioBuffer(dstIndex, length);
      while (view.remaining() >= 8) {
        view.putLong(0L);
      }
      while (view.hasRemaining()) {
        view.put((byte) 0);
      }
    }
  }

  private static void check(ByteBuf b, int index, int length) {
    if (index < 0 || length < 0 || length > b.capacity() - index) {
      throw new IndexOutOfBoundsException("range " + index + "+" + length + " outside a buffer of " + b.capacity());
    }
  }
}
