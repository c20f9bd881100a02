package io.vmd.server.store;

import io.netty.buffer.ByteBuf;
import java.util.ArrayList;

/**
 * Where a server keeps 4 KiB pages, keyed by (namespace id, page index).
 *
 * <p>Contract shared by every engine (and checked by one test suite):
 * <ul>
 *   <li>capacity is exact: {@link #capacityPages()} pages fit, and not one more;
 *   <li>a batch write is all or nothing with respect to space: when the new pages of a batch do not
 *       fit, nothing of it is written and it returns false;
 *   <li>memory is taken when a page is first written and handed back when it is deleted;
 *   <li>every method is safe to call from several threads.
 * </ul>
 */
public interface PageStore extends AutoCloseable {

  /** Returned by {@link #read} for a page never written. */
  long NO_STAMP = -1;

  /** Bytes of a sealed page's tag, kept beside the page. */
  int TAG_SIZE = 16;

  /**
   * Writes {@code count} consecutive pages read from {@code src} at its reader index (not moved),
   * each stored with {@code stamp}, the version of the write (kept, never interpreted). With
   * {@code sealed} each page in {@code src} is followed by its 16-byte tag, stored beside it (an
   * unsealed write leaves a zero tag, which no sealed read accepts).
   */
  boolean write(int namespace, long firstPage, int count, ByteBuf src, long stamp, boolean sealed);

  default boolean write(int namespace, long firstPage, int count, ByteBuf src, long stamp) {
    return write(namespace, firstPage, count, src, stamp, false);
  }

  /**
   * Copies the page into {@code dst} at its writer index (then its tag, with {@code sealed}), advances
   * it past them and returns the stamp the page was last written with; or returns {@link #NO_STAMP}
   * and leaves {@code dst} alone when the page was never written.
   */
  long read(int namespace, long page, ByteBuf dst, boolean sealed);

  default long read(int namespace, long page, ByteBuf dst) {
    return read(namespace, page, dst, false);
  }

  /** Whether this engine lends pages to replies ({@link #readPinned}) instead of copying them. */
  default boolean pins() {
    return false;
  }

  /**
   * Adds the (unsealed) page to {@code reply} as a view of the store's own memory, which stays as it
   * is until the reply is unpinned; returns its stamp, or {@link #NO_STAMP} when it was never written.
   * Only for engines whose {@link #pins} is true.
   */
  default long readPinned(int namespace, long page, PinnedPages reply) {
    throw new UnsupportedOperationException(engine() + " pages are copied, not lent");
  }

  boolean contains(int namespace, long page);

  /** Deletes the pages of the range that exist; returns how many did. */
  long delete(int namespace, long firstPage, long count);

  /** Deletes every page of the namespace; returns how many there were. */
  long deleteNamespace(int namespace);

  /** The listing position after the last page: nothing more to list. */
  long LIST_END = -1;

  /** Receives the pages of a listing. */
  @FunctionalInterface
  interface PageSink {
    void page(long page, long stamp);
  }

  /**
   * Lists pages of the namespace held here, with their stamps, in no particular order: about
   * {@code max} of them from listing position {@code cursor} (0 to begin), and returns the position
   * to go on from, or {@link #LIST_END}. A page stored for the whole listing is listed exactly once
   * however the store changes between calls (a page's position does not move while it is stored); one
   * written or deleted meanwhile may or may not be. Each call holds the store only for its batch, so a
   * listing of millions of pages neither builds one array nor stops writes.
   */
  long list(int namespace, long cursor, int max, PageSink sink);

  /** The whole listing at once, page at even positions and its stamp after: for tests and small namespaces. */
  default long[] list(int namespace) {
    ArrayList<long[]> all = new ArrayList<>();
    long cursor = 0;
    do {
      cursor = list(namespace, cursor, 4096, (page, stamp) -> all.add(new long[] {page, stamp}));
    } while (cursor != LIST_END);
    long[] out = new long[Math.multiplyExact(2, all.size())];
    for (int i = 0; i < all.size(); i++) {
      out[2 * i] = all.get(i)[0];
      out[2 * i + 1] = all.get(i)[1];
    }
    return out;
  }

  long pageCount(int namespace);

  long usedPages();

  long capacityPages();

  /** Engine name for logs and metrics. */
  String engine();

  @Override
  void close();

  /** Packs (namespace, page) into one key: 24 bits of namespace, 40 bits of page index. */
  static long key(int namespace, long page) {
    return ((long) namespace << 40) | page;
  }

  static int namespaceOf(long key) {
    return (int) (key >>> 40);
  }

  static long pageOf(long key) {
    return key & ((1L << 40) - 1);
  }

  /** Largest page index a key can hold (4 PiB of namespace). */
  long MAX_PAGE = (1L << 40) - 1;
}
