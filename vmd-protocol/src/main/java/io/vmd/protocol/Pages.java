package io.vmd.protocol;

/** The unit VMD stores: a 4 KiB page. Page index = byte offset / 4096 = swap offset. */
public final class Pages {
  public static final int PAGE_SIZE = 4096;
  public static final int PAGE_SHIFT = 12;

  private Pages() {}

  /** Number of whole pages needed to hold {@code bytes}. */
  public static long pagesFor(long bytes) {
    return (bytes + PAGE_SIZE - 1) >>> PAGE_SHIFT;
  }
}
