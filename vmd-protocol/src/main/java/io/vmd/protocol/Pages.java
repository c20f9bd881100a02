package io.vmd.protocol;

/** The unit VMD stores: a 4 KiB page. Page index = byte offset / 4096 = swap offset. */
public final class Pages {
  public static final int PAGE_SIZE = 4096;
  public static final int PAGE_SHIFT = 12;
  /**
   * The largest namespace: 2^36 pages (256 TiB). Page indices of every namespace fit a server's page
   * key (2^40 pages) and per-page bitmaps of a namespace index with an int.
   */
  public static final long MAX_NAMESPACE_BYTES = 1L << 48;

  private Pages() {}

  /** Number of whole pages needed to hold {@code bytes}. */
  public static long pagesFor(long bytes) {
    return (bytes + PAGE_SIZE - 1) >>> PAGE_SHIFT;
  }
}
