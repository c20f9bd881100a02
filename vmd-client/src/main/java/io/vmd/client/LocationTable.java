package io.vmd.client;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where each page of a namespace lives: R two-byte entries per page, each the cluster-wide slot
 * (1..65535) of a server holding a copy (0: no copy in that entry). Memory is allocated in chunks of
 * 64 Ki pages when a page of the chunk is first stored, so a sparse 1 TiB namespace costs only what
 * it uses, and a dense 1 GiB one 512 KiB per replica.
 *
 * <p>Only the client changes it; others read it (the gateway's block status, tools).
 *
 * <p>Readers and writers of the same page must be ordered by the caller (the NBD gateway orders
 * requests per page); different pages may be used from any thread.
 */
final class LocationTable {
  static final int CHUNK_SHIFT = 16;
  private static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;
  public static final int NONE = -1;

  private final long pages;
  private final int replicas;
  private final char[][] chunks;

  public LocationTable(long pages, int replicas) {
    if (replicas < 1 || replicas > 8) {
      throw new IllegalArgumentException("replicas " + replicas);
    }
    this.pages = pages;
    this.replicas = replicas;
    this.chunks = new char[(int) ((pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT)][];
  }

  public long pages() {
    return pages;
  }

  public int replicas() {
    return replicas;
  }

  /** Server slot of replica entry {@code r} of the page, or {@link #NONE}. */
  public int get(long page, int r) {
    char[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    if (c == null) {
      return NONE;
    }
    int s = c[offset(page) + r];
    return s == 0 ? NONE : s;
  }

  /** The first server holding a copy, or {@link #NONE} when the page is not stored. */
  public int primary(long page) {
    char[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    if (c != null) {
      int o = offset(page);
      for (int r = 0; r < replicas; r++) {
        if (c[o + r] != 0) {
          return c[o + r];
        }
      }
    }
    return NONE;
  }

  public boolean stored(long page) {
    return primary(page) != NONE;
  }

  /** Sets replica entry {@code r} of the page to {@code slot} (1..65535), or clears it with {@link #NONE}. */
  void set(long page, int r, int slot) {
    if (slot == NONE) {
      char[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
      if (c != null) {
        c[offset(page) + r] = 0;
      }
      return;
    }
    if (slot < 1 || slot > 65535) {
      throw new IllegalArgumentException("server slot " + slot + " outside 1..65535");
    }
    chunk(page)[offset(page) + r] = (char) slot;
  }

  /** Records a copy on server {@code slot} in the first free entry (used when rebuilding from LIST). */
  boolean add(long page, int slot) {
    char[] c = chunk(page);
    int o = offset(page);
    for (int r = 0; r < replicas; r++) {
      if (c[o + r] == slot) {
        return true;
      }
      if (c[o + r] == 0) {
        c[o + r] = (char) slot;
        return true;
      }
    }
    return false;
  }

  void clear(long page) {
    char[] c = chunks[(int) (page >>> CHUNK_SHIFT)];
    if (c != null) {
      Arrays.fill(c, offset(page), offset(page) + replicas, (char) 0);
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

  /** Copies held by each server slot; a scan, for tools and tests. */
  public Map<Integer, Long> copiesPerServer() {
    Map<Integer, Long> out = new TreeMap<>();
    for (long p = 0; p < pages; p++) {
      if (chunks[(int) (p >>> CHUNK_SHIFT)] == null) {
        p |= CHUNK_PAGES - 1;
        continue;
      }
      for (int r = 0; r < replicas; r++) {
        int s = get(p, r);
        if (s != NONE) {
          out.merge(s, 1L, Long::sum);
        }
      }
    }
    return out;
  }

  private char[] chunk(long page) {
    int i = (int) (page >>> CHUNK_SHIFT);
    char[] c = chunks[i];
    if (c == null) {
      synchronized (this) {
        c = chunks[i];
        if (c == null) {
          c = new char[CHUNK_PAGES * replicas];
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
