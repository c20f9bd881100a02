package io.vmd.server.store;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.util.Recycler;
import io.vmd.protocol.Pages;
import java.util.Arrays;

/**
 * The pages of one reply, lent by the store instead of copied: views of their slots, in order
 * (neighbouring slots of a chunk as one view), and the slots they pin. The reply writes the views
 * itself, each a message of its own, so that no composite buffer (nor the NIO buffers a composite is
 * written through) is made per reply; it calls {@link #unpin} once their bytes have left (the writes
 * completed or failed). Until then the store neither writes nor reuses those slots.
 */
public final class PinnedPages implements ChannelFutureListener {
  private static final Recycler<PinnedPages> POOL = new Recycler<>() {
    @Override
    protected PinnedPages newObject(Handle<PinnedPages> handle) {
      return new PinnedPages(handle);
    }
  };

  private final Recycler.Handle<PinnedPages> handle;
  private int[] slots = new int[0];
  private ByteBuf[] views = new ByteBuf[4];
  private int viewCount;
  private int pinned;
  private long bytes;
  private OffHeapSlabStore store;
  private ByteBuf runChunk;
  private int runStart;
  private int runBytes;

  private PinnedPages(Recycler.Handle<PinnedPages> handle) {
    this.handle = handle;
  }

  /**
   * For at most {@code maxPages} pages; pooled (a GET allocates none of it), back to the pool at
   * {@link #unpin}.
   */
  public static PinnedPages of(int maxPages) {
    PinnedPages p = POOL.get();
    if (p.slots.length < maxPages) {
      p.slots = new int[maxPages];
    }
    p.viewCount = 0;
    p.pinned = 0;
    p.bytes = 0;
    p.store = null;
    p.runChunk = null;
    return p;
  }

  /** Called by the store under its lock, the slot just pinned. */
  void add(OffHeapSlabStore from, int slot, ByteBuf chunk, int offset) {
    store = from;
    slots[pinned++] = slot;
    bytes += Pages.PAGE_SIZE;
    if (runChunk == chunk && runStart + runBytes == offset) {
      runBytes += Pages.PAGE_SIZE;
      return;
    }
    flush();
    runChunk = chunk;
    runStart = offset;
    runBytes = Pages.PAGE_SIZE;
  }

  /** Ends the last run of pages; call once, after the last page. */
  public void finish() {
    flush();
  }

  /** How many pages this reply holds. */
  public int pages() {
    return pinned;
  }

  /** The bytes of all its views. */
  public long bytes() {
    return bytes;
  }

  /** How many views {@link #finish} left, in page order. */
  public int views() {
    return viewCount;
  }

  /** View {@code i}, handed over: its reference is the taker's from now on. */
  public ByteBuf takeView(int i) {
    ByteBuf v = views[i];
    views[i] = null;
    return v;
  }

  /** Releases the views not taken (a reply that is not sent). */
  public void releaseViews() {
    for (int i = 0; i < viewCount; i++) {
      if (views[i] != null) {
        views[i].release();
        views[i] = null;
      }
    }
  }

  /**
   * The reply's bytes have left: the store may write and reuse the slots again. Call once; this object
   * goes back to the pool.
   */
  public void unpin() {
    for (int i = 0; i < pinned; i++) {
      store.unpin(slots[i]);
    }
    pinned = 0;
    store = null;
    handle.recycle(this);
  }

  /** The reply's last write completed (or failed): {@link #unpin}. */
  @Override
  public void operationComplete(ChannelFuture sent) {
    unpin();
  }

  private void flush() {
    if (runChunk != null) {
      if (viewCount == views.length) {
        views = Arrays.copyOf(views, viewCount * 2);
      }
      // The view holds a reference on the chunk: a store closed meanwhile frees it after the send.
      views[viewCount++] = runChunk.retainedSlice(runStart, runBytes);
      runChunk = null;
    }
  }
}
