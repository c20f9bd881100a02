package io.vmd.client;

import java.util.Arrays;

/**
 * The newest stamp this client knows of each page of a sealed namespace: learned when attaching (the
 * highest any server listed) and moved on by each write that completes. A sealed read accepts a copy
 * only at this stamp or later, so a server cannot hand back an old copy under its old, still valid
 * seal. Chunked like the location table; 8 bytes a page where pages exist.
 */
final class StampTable {
  private static final int CHUNK_PAGES = 1 << LocationTable.CHUNK_SHIFT;
  static final long UNKNOWN = -1;
  private final long[][] chunks;

  StampTable(long pages) {
    chunks = new long[(int) ((pages + CHUNK_PAGES - 1) >>> LocationTable.CHUNK_SHIFT)][];
  }

  /** The newest stamp known for the page, or {@link #UNKNOWN}. */
  long get(long page) {
    long[] c = chunks[(int) (page >>> LocationTable.CHUNK_SHIFT)];
    return c == null ? UNKNOWN : c[(int) (page & (CHUNK_PAGES - 1))];
  }

  /** Pages [page, page + count) now have a copy stamped {@code stamp} (kept when newer than known). */
  synchronized void advance(long page, int count, long stamp) {
    for (long p = page; p < page + count; p++) {
      int i = (int) (p >>> LocationTable.CHUNK_SHIFT);
      if (chunks[i] == null) {
        long[] c = new long[CHUNK_PAGES];
        Arrays.fill(c, UNKNOWN);
        chunks[i] = c;
      }
      int at = (int) (p & (CHUNK_PAGES - 1));
      if (stamp > chunks[i][at]) {
        chunks[i][at] = stamp;
      }
    }
  }
}
