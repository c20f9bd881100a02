package io.vmd.client;

import io.netty.util.collection.IntObjectHashMap;
import java.util.Arrays;

/**
 * Builds a namespace's location table from what the servers list, keeping of each page only the
 * copies with the highest stamp. A lower-stamped copy is stale: its server was away while the page
 * was rewritten elsewhere, and nobody was left to tell it. Copies beyond the replica count with the
 * highest stamp are surplus. Both are remembered per server, so a writer can delete them.
 *
 * <p>Order of the servers' replies does not matter. Stamps are held in chunks like the location
 * table's, allocated for chunks that have pages, and only while the namespace is being attached.
 */
final class NewestCopies {
  private static final int CHUNK_PAGES = 1 << LocationTable.CHUNK_SHIFT;
  private static final long NONE = -1;

  private final LocationTable table;
  private final long[][] stamps;
  private final IntObjectHashMap<PageList> discard =
      new IntObjectHashMap<>();
  private long maxStamp = NONE;
  /**
   * Above it a stamp names an epoch the namespace has not reached: no writer made it, a server did
   * (one listing Long.MAX_VALUE would otherwise push every later writer's stamps past their range).
   */
  private final long maxValidStamp;

  NewestCopies(LocationTable table) {
    this(table, Long.MAX_VALUE);
  }

  NewestCopies(LocationTable table, long maxValidStamp) {
    this.table = table;
    this.maxValidStamp = maxValidStamp;
    this.stamps = new long[(int) ((table.pages() + CHUNK_PAGES - 1) >>> LocationTable.CHUNK_SHIFT)][];
  }

  private PageList discard(int server) {
    PageList l = discard.get(server);
    if (l == null) {
      l = new PageList();
      discard.put(server, l);
    }
    return l;
  }

  /**
   * The page was written after the attach: whatever a server that answers late holds of it is older.
   * Only needed while some server of the namespace has not answered.
   */
  synchronized void written(long page, int count) {
    for (int i = 0; i < count; i++) {
      long[] chunk = chunk(page + i);
      chunk[(int) ((page + i) & (CHUNK_PAGES - 1))] = Long.MAX_VALUE;
    }
  }

  /** Server {@code server} holds a copy of {@code page} stamped {@code stamp}. */
  synchronized void offer(int server, long page, long stamp) {
    if (page < 0 || page >= table.pages()) {
      return; // servers refuse such pages; nothing to keep or delete
    }
    if (stamp > maxValidStamp) {
      discard(server).add(page); // a forged stamp: the copy is deleted, never believed
      return;
    }
    maxStamp = Math.max(maxStamp, stamp);
    long[] chunk = chunk(page);
    int at = (int) (page & (CHUNK_PAGES - 1));
    long newest = chunk[at];
    if (stamp > newest) {
      for (int r = 0; r < table.replicas(); r++) {
        int s = table.get(page, r);
        if (s != LocationTable.NONE) {
          discard(s).add(page);
        }
      }
      table.clear(page);
      table.add(page, server);
      chunk[at] = stamp;
    } else if (stamp < newest || !table.add(page, server)) {
      discard(server).add(page);
    }
  }

  /** The newest stamp listed of each page, as a table a sealed namespace's reads check against. */
  synchronized StampTable newestStamps() {
    StampTable t = new StampTable(table.pages());
    for (int c = 0; c < stamps.length; c++) {
      long[] chunk = stamps[c];
      for (int i = 0; chunk != null && i < CHUNK_PAGES; i++) {
        if (chunk[i] >= 0 && chunk[i] != Long.MAX_VALUE) {
          t.advance(((long) c << LocationTable.CHUNK_SHIFT) + i, 1, chunk[i]);
        }
      }
    }
    return t;
  }

  /** The highest stamp any server listed, or -1 when the namespace holds no page. */
  synchronized long maxStamp() {
    return maxStamp;
  }

  /**
   * Pages whose copy on {@code server} is stale or surplus, ascending; taken: asked again, it lists only
   * what was found since (a page deleted once may have been written there anew meanwhile).
   */
  synchronized long[] discarded(int server) {
    PageList l = discard.remove(server);
    return l == null ? new long[0] : l.sorted();
  }

  synchronized long discardedTotal() {
    long n = 0;
    for (PageList l : discard.values()) {
      n += l.size();
    }
    return n;
  }

  private long[] chunk(long page) {
    int i = (int) (page >>> LocationTable.CHUNK_SHIFT);
    if (stamps[i] == null) {
      stamps[i] = new long[CHUNK_PAGES];
      Arrays.fill(stamps[i], NONE);
    }
    return stamps[i];
  }
}
