package io.vmd.client;

import java.util.Arrays;

/**
 * Where each page of a namespace lives: R bytes per page, each the index + 1 of a server in the
 * client's server list (0: no copy in that slot). Memory is allocated in chunks of 64 Ki pages
 * when a page of the chunk is first stored, so a sparse 1 TiB namespace costs only what it uses,
 * and a dense 1 GiB one 256 KiB per replica.
 *
 * <p>Readers and writers of the same page must be ordered by the caller (the NBD gateway orders
 * requests per page); different pages may be used from any thread.
 */
public final class LocationTable {
  static final int CHUNK_SHIFT = 16;
  private static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;
  public static final int NONE = -1;

  private final long pages;
  private final int replicas;
  private final byte[][] chunks;

  public LocationTable(long pages, int replicas) {
    if (replicas < 1 || replicas > 8) {
      throw new IllegalArgumentException("replicas " + replicas);
    }
    this.pages = pages;
    this.replicas = replicas;
    this.chunks = new byte[(int) ((pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT)][];
  }

  public long pages() {
    return pages;
  }

  public int replicas() {
    return replicas;
  }

  /** Server index of replica slot {@code r} of the page, or {@link #NONE}. */
  public int get(long page, int r) {
    byte[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    return c == null ? NONE : (c[offset(page) + r] & 0xff) - 1;
  }

  /** The first server holding a copy, or {@link #NONE} when the page is not stored. */
  public int primary(long page) {
    byte[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    if (c != null) {
      int o = offset(page);
      for (int r = 0; r < replicas; r++) {
        if (c[o + r] != 0) {
          return (c[o + r] & 0xff) - 1;
        }
      }
    }
    return NONE;
  }

  public boolean stored(long page) {
    return primary(page) != NONE;
  }

  public void set(long page, int r, int server) {
    chunk(page)[offset(page) + r] = (byte) (server + 1);
  }

  /** Records a copy on {@code server} in the first free slot (used when rebuilding from LIST). */
  public boolean add(long page, int server) {
    byte[] c = chunk(page);
    int o = offset(page);
    for (int r = 0; r < replicas; r++) {
      if ((c[o + r] & 0xff) - 1 == server) {
        return true;
      }
      if (c[o + r] == 0) {
        c[o + r] = (byte) (server + 1);
        return true;
      }
    }
    return false;
  }

  public void clear(long page) {
    byte[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    if (c != null) {
      Arrays.fill(c, offset(page), offset(page) + replicas, (byte) 0);
    }
  }

  /** True when both pages have the same servers in the same slots. */
  public boolean sameLocation(long a, long b) {
    for (int r = 0; r < replicas; r++) {
      if (get(a, r) != get(b, r)) {
        return false;
      }
    }
    return true;
  }

  /** Pages with at least one copy; a scan, for tools and tests. */
  public long storedPages() {
    long n = 0;
    for (long p = 0; p < pages; p++) {
      if (chunks[(int) (p >>> CHUNK_SHIFT)] == null) {
        p |= CHUNK_PAGES - 1;
        continue;
      }
      if (stored(p)) {
        n++;
      }
    }
    return n;
  }

  /** Copies held by each server; a scan, for tools and tests. */
  public long[] copiesPerServer(int servers) {
    long[] out = new long[servers];
    for (long p = 0; p < pages; p++) {
      if (chunks[(int) (p >>> CHUNK_SHIFT)] == null) {
        p |= CHUNK_PAGES - 1;
        continue;
      }
      for (int r = 0; r < replicas; r++) {
        int s = get(p, r);
        if (s != NONE) {
          out[s]++;
        }
      }
    }
    return out;
  }

  private byte[] chunk(long page) {
    int i = (int) (page >>> CHUNK_SHIFT);
    byte[] c = chunks[i];
    if (c == null) {
      synchronized (this) {
        c = chunks[i];
        if (c == null) {
          c = new byte[CHUNK_PAGES * replicas];
          chunks[i] = c;
        }
      }
    }
    return c;
  }

  private int offset(long page) {
    return (int) (page & (CHUNK_PAGES - 1)) * replicas;
  }
}
