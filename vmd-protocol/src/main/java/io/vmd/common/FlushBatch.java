package io.vmd.common;

import io.netty.channel.Channel;
import io.netty.channel.ChannelPromise;
import io.netty.util.concurrent.FastThreadLocal;
import java.util.Arrays;

/**
 * Defers flushes while an event loop handles one burst of inbound messages, then flushes every
 * channel written during the burst once. One NBD read burst of 32 requests fans out to the same few
 * server connections: without this each request costs its own write syscall per server; with
 * Netty's FlushConsolidationHandler every flush outside a read of that same channel costs a task.
 *
 * <p>A handler {@link #open opens} the batch on its first message of a burst and {@link #close closes}
 * it in {@code channelReadComplete}. Batches nest (a reply burst may complete requests of another
 * channel); the flushes happen when the outermost closes. Off an event loop, or with no batch open,
 * {@link #writeAndFlush} flushes at once. Loop-confined: no locking.
 */
public final class FlushBatch {
  private static final FastThreadLocal<FlushBatch> LOOP = new FastThreadLocal<>() {
    @Override
    protected FlushBatch initialValue() {
      return new FlushBatch();
    }
  };

  private int depth;
  private Channel[] dirty = new Channel[8];
  /** What runs right after each dirty channel's flush (see {@link #writeThenFlush}), or null. */
  private Runnable[] afterFlush = new Runnable[8];
  private int dirtyCount;

  private FlushBatch() {}

  /** The batch of the calling event loop thread. */
  public static FlushBatch current() {
    return LOOP.get();
  }

  public void open() {
    depth++;
  }

  /** Closes one level; closing the outermost flushes every channel written meanwhile. */
  public void close() {
    if (depth > 0 && --depth == 0) {
      flushAll();
    }
  }

  /** Writes {@code msg} with a void promise and flushes it now, or when the loop's batch closes. */
  public static void writeAndFlush(Channel ch, Object msg) {
    if (ch.eventLoop().inEventLoop()) {
      FlushBatch b = LOOP.get();
      if (b.depth > 0) {
        ch.write(msg, ch.voidPromise());
        b.mark(ch);
        return;
      }
    }
    ch.writeAndFlush(msg, ch.voidPromise());
  }

  /** Like {@link #writeAndFlush(Channel, Object)}, completing {@code promise} when the bytes have left. */
  public static void writeAndFlush(Channel ch, Object msg, ChannelPromise promise) {
    if (ch.eventLoop().inEventLoop()) {
      FlushBatch b = LOOP.get();
      if (b.depth > 0) {
        ch.write(msg, promise);
        b.mark(ch);
        return;
      }
    }
    ch.writeAndFlush(msg, promise);
  }

  /**
   * Writes {@code msg} with a void promise and flushes it now, or when the loop's batch closes;
   * {@code afterFlush} runs on the loop right after that flush, once however many writes it follows.
   * It may look at what is still unsent and write (and flush) again.
   */
  public static void writeThenFlush(Channel ch, Object msg, Runnable afterFlush) {
    if (ch.eventLoop().inEventLoop()) {
      FlushBatch b = LOOP.get();
      if (b.depth > 0) {
        ch.write(msg, ch.voidPromise());
        b.mark(ch, afterFlush);
        return;
      }
    }
    ch.writeAndFlush(msg, ch.voidPromise());
    afterFlush.run();
  }

  private void mark(Channel ch) {
    mark(ch, null);
  }

  private void mark(Channel ch, Runnable after) {
    for (int i = 0; i < dirtyCount; i++) {
      if (dirty[i] == ch) {
        if (after != null) {
          afterFlush[i] = after;
        }
        return;
      }
    }
    if (dirtyCount == dirty.length) {
      dirty = Arrays.copyOf(dirty, dirtyCount * 2);
      afterFlush = Arrays.copyOf(afterFlush, dirtyCount * 2);
    }
    afterFlush[dirtyCount] = after;
    dirty[dirtyCount++] = ch;
  }

  private void flushAll() {
    // A flush may complete writes whose listeners write again: take the list as it is now.
    while (dirtyCount > 0) {
      Channel ch = dirty[--dirtyCount];
      Runnable after = afterFlush[dirtyCount];
      dirty[dirtyCount] = null;
      afterFlush[dirtyCount] = null;
      ch.flush();
      if (after != null) {
        after.run();
      }
    }
  }
}
