package io.vmd.client;

import java.util.Arrays;

/** A growable list of page indices, for the few copies found stale or surplus. */
final class PageList {
  private long[] pages = new long[0];
  private int size;

  void add(long page) {
    if (size == pages.length) {
      pages = Arrays.copyOf(pages, Math.max(16, size * 2));
    }
    pages[size++] = page;
  }

  int size() {
    return size;
  }

  /** The pages, ascending. */
  long[] sorted() {
    long[] out = Arrays.copyOf(pages, size);
    Arrays.sort(out);
    return out;
  }
}
