package io.vmd.server.store;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.vmd.protocol.Pages;

/**
 * The pages of one reply, lent by the store instead of copied: views of their slots, in order, added
 * to the reply's buffer (neighbouring slots of a chunk as one view), and the slots they pin. The reply
 * calls {@link #unpin} once its bytes have left (its write completed or failed); until then the store
 * neither writes nor reuses those slots.
 */
public final class PinnedPages {
  private final CompositeByteBuf into;
  private final int[] slots;
  private int pinned;
  private OffHeapSlabStore store;
  private ByteBuf runChunk;
  private int runStart;
  private int runBytes;

  /** For at most {@code maxPages} pages, appended to {@code into} (which must take one component each). */
  public PinnedPages(CompositeByteBuf into, int maxPages) {
    this.into = into;
    this.slots = new int[maxPages];
  }

  /** Called by the store under its lock, the slot just pinned. */
  void add(OffHeapSlabStore from, int slot, ByteBuf chunk, int offset) {
    store = from;
    slots[pinned++] = slot;
    if (runChunk == chunk && runStart + runBytes == offset) {
      runBytes += Pages.PAGE_SIZE;
      return;
    }
    flush();
    runChunk = chunk;
    runStart = offset;
    runBytes = Pages.PAGE_SIZE;
  }

  /** Adds the last run of pages to the reply's buffer; call once, after the last page. */
  public void finish() {
    flush();
  }

  /** How many pages this reply holds. */
  public int pages() {
    return pinned;
  }

  /** The reply's bytes have left: the store may write and reuse the slots again. Call once. */
  public void unpin() {
    for (int i = 0; i < pinned; i++) {
      store.unpin(slots[i]);
    }
    pinned = 0;
  }

  private void flush() {
    if (runChunk != null) {
      // The view holds a reference on the chunk: a store closed meanwhile frees it after the send.
      into.addComponent(true, runChunk.retainedSlice(runStart, runBytes));
      runChunk = null;
    }
  }
}
