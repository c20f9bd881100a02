package io.vmd.server.store;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.vmd.common.PageCopy;
import io.vmd.protocol.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.BitSet;
import java.util.concurrent.locks.StampedLock;

/**
 * The default engine: pages in direct-memory chunks of 256 slots (1 MiB), found through a primitive
 * open-addressing index from page key to slot.
 *
 * <p>Chunks are allocated when a page first needs a slot and released as soon as their last page is
 * deleted (one empty chunk is kept as a spare, so a workload that writes and trims at a chunk
 * boundary does not allocate and free memory on every request). Each chunk keeps an intrusive free
 * list: a free slot's first four bytes hold the next free slot. New slots go to the lowest-numbered
 * chunk with room, which keeps pages packed into few chunks so that deletes can give chunks back.
 * A chunk's page stamps (8 bytes a slot) and seal tags (16) live in on-heap arrays that come and go
 * with it.
 *
 * <p>One {@link StampedLock}: reads share it, writes are exclusive. That makes a batch write
 * all-or-nothing with respect to space without any undo, and a store operation is a few hundred
 * nanoseconds, far below the network round trip around it.
 *
 * <p>{@link #readPinned} lends a page's slot to a reply that is sent straight from it. Until the reply
 * lets go ({@link PinnedPages#unpin}), the slot is never written or reused: a page overwritten
 * meanwhile moves to a fresh slot, a deleted one leaves the index at once, and either way the old
 * slot is <em>retired</em> and freed by its last unpin. So a reply carries the bytes the page had when
 * it was read, never those of a page (of any namespace) written later. Pins are counted per slot
 * without the lock; the count's top bit marks a retired slot, so that retiring (under the write lock)
 * and the last unpin (on the replying thread) agree on who frees it.
 */
public final class OffHeapSlabStore implements PageStore {
  static final int CHUNK_SLOTS = 256;
  private static final int CHUNK_BYTES = CHUNK_SLOTS * Pages.PAGE_SIZE;
  private static final int NONE = -1;
  private static final long NO_KEY = -1;
  /** Slots one listing call looks at before it returns, found or not: the lock is held that long. */
  private static final int SCAN_PER_CALL = 1 << 16;
  /** A pin count's top bit: the slot left the index while pinned; its last unpin frees it. */
  private static final int RETIRED = 1 << 31;
  private static final VarHandle PINS = MethodHandles.arrayElementVarHandle(int[].class);

  private final long capacityPages;
  private final ByteBufAllocator alloc;
  private final StampedLock lock = new StampedLock();
  private final LongIntIndex index;
  private final ByteBuf[] chunks;
  /** The stamp of each slot, allocated and released with its chunk. */
  private final long[][] chunkStamps;
  /** The seal tag of each slot (16 bytes a slot; zeros for an unsealed page), with its chunk. */
  private final byte[][] chunkTags;
  /** The key stored in each slot ({@link #NO_KEY} when free): listings walk slots, which never move. */
  private final long[][] chunkKeys;
  /** Pins of each slot by replies in flight (see {@link #readPinned}), with the RETIRED bit. */
  private final int[][] chunkPins;
  private final int[] chunkLive;
  private final int[] chunkFreeHead;
  private final int[] chunkBump;
  private final BitSet chunksWithRoom = new BitSet();
  private final BitSet chunksAllocated = new BitSet();
  private final NamespacePageCounts perNamespace = new NamespacePageCounts();
  private int emptyChunks;
  private long used;
  /** Slots out of the index but still pinned: they hold memory until their last unpin. */
  private long retired;
  private boolean closed;

  public OffHeapSlabStore(long capacityBytes) {
    this(capacityBytes, CHUNKS);
  }

  /**
   * Page chunks are the server's memory, not I/O buffers: allocated and released by this store alone
   * (see {@link #allocatedBytes}), so Netty's leak detector does not watch them — at the paranoid level
   * the tests run at, it would record a stack trace on every page copied.
   */
  private static final ByteBufAllocator CHUNKS = new UnpooledByteBufAllocator(true, true);

  OffHeapSlabStore(long capacityBytes, ByteBufAllocator alloc) {
    this.capacityPages = capacityBytes / Pages.PAGE_SIZE;
    if (capacityPages < 1) {
      throw new IllegalArgumentException("capacity " + capacityBytes + " holds no page");
    }
    long chunkCount = (capacityPages + CHUNK_SLOTS - 1) / CHUNK_SLOTS;
    if (chunkCount > Integer.MAX_VALUE / 2) {
      throw new IllegalArgumentException("capacity " + capacityBytes + " is too large for one store");
    }
    this.alloc = alloc;
    int n = (int) chunkCount;
    chunks = new ByteBuf[n];
    chunkStamps = new long[n][];
    chunkTags = new byte[n][];
    chunkKeys = new long[n][];
    chunkPins = new int[n][];
    chunkLive = new int[n];
    chunkFreeHead = new int[n];
    chunkBump = new int[n];
    Arrays.fill(chunkFreeHead, NONE);
    index = new LongIntIndex(1024);
  }

  @Override
  public String engine() {
    return "slab";
  }

  @Override
  public boolean write(int namespace, long firstPage, int count, ByteBuf src, long version, boolean sealed) {
    long stamp = lock.writeLock();
    try {
      checkOpen();
      long fresh = 0;
      for (int i = 0; i < count; i++) {
        int slot = index.get(PageStore.key(namespace, firstPage + i));
        if (slot == LongIntIndex.MISSING || pins(slot) != 0) {
          fresh++; // a pinned page is written to a new slot (pins only fall meanwhile: an upper bound)
        }
      }
      if (used + retired + fresh > capacityPages) {
        return false;
      }
      int srcIndex = src.readerIndex();
      int record = sealed ? Pages.PAGE_SIZE + TAG_SIZE : Pages.PAGE_SIZE;
      for (int i = 0; i < count; i++, srcIndex += record) {
        long key = PageStore.key(namespace, firstPage + i);
        int slot = index.get(key);
        if (slot == LongIntIndex.MISSING) {
          slot = allocateSlot();
          index.put(key, slot);
          chunkKeys[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = key;
          used++;
          perNamespace.add(namespace, 1);
        } else if (retire(slot)) {
          // A reply is sending the old bytes from this slot: the new ones go elsewhere.
          chunkKeys[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = NO_KEY;
          slot = allocateSlot();
          index.put(key, slot);
          chunkKeys[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = key;
        }
        PageCopy.copy(src, srcIndex, chunks[slot / CHUNK_SLOTS], offset(slot), Pages.PAGE_SIZE);
        chunkStamps[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = version;
        byte[] tags = chunkTags[slot / CHUNK_SLOTS];
        int tagAt = (slot % CHUNK_SLOTS) * TAG_SIZE;
        if (sealed) {
          src.getBytes(srcIndex + Pages.PAGE_SIZE, tags, tagAt, TAG_SIZE);
        } else {
          Arrays.fill(tags, tagAt, tagAt + TAG_SIZE, (byte) 0);
        }
      }
      return true;
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  @Override
  public long read(int namespace, long page, ByteBuf dst, boolean sealed) {
    long stamp = lock.readLock();
    try {
      int slot = slotOf(namespace, page);
      if (slot == LongIntIndex.MISSING) {
        return NO_STAMP;
      }
      // Not dst.writeBytes: Netty's adaptive buffers copy through a freshly sliced NIO view each time.
      dst.ensureWritable(Pages.PAGE_SIZE + (sealed ? TAG_SIZE : 0));
      int at = dst.writerIndex();
      PageCopy.copy(chunks[slot / CHUNK_SLOTS], offset(slot), dst, at, Pages.PAGE_SIZE);
      dst.writerIndex(at + Pages.PAGE_SIZE);
      if (sealed) {
        dst.writeBytes(chunkTags[slot / CHUNK_SLOTS], (slot % CHUNK_SLOTS) * TAG_SIZE, TAG_SIZE);
      }
      return chunkStamps[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS];
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public boolean pins() {
    return true;
  }

  /**
   * Adds the page to {@code reply} as a view of its slot, pinned until the reply's
   * {@link PinnedPages#unpin}; returns its stamp, or {@link #NO_STAMP} (nothing added) when it was
   * never written. Unsealed pages only: a sealed reply interleaves tags, and is copied.
   */
  @Override
  public long readPinned(int namespace, long page, PinnedPages reply) {
    long stamp = lock.readLock();
    try {
      int slot = slotOf(namespace, page);
      if (slot == LongIntIndex.MISSING) {
        return NO_STAMP;
      }
      int c = slot / CHUNK_SLOTS;
      PINS.getAndAdd(chunkPins[c], slot % CHUNK_SLOTS, 1);
      reply.add(this, slot, chunks[c], offset(slot));
      return chunkStamps[c][slot % CHUNK_SLOTS];
    } finally {
      lock.unlockRead(stamp);
    }
  }

  /** A reply lets go of {@code slot}; the last pin of a retired slot frees it. */
  void unpin(int slot) {
    int left = (int) PINS.getAndAdd(chunkPins[slot / CHUNK_SLOTS], slot % CHUNK_SLOTS, -1) - 1;
    if (left != RETIRED) {
      return;
    }
    long stamp = lock.writeLock();
    try {
      if (closed) {
        return;
      }
      PINS.setVolatile(chunkPins[slot / CHUNK_SLOTS], slot % CHUNK_SLOTS, 0);
      retired--;
      freeSlot(slot);
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  /** Slots retired while pinned and not yet freed (for tests). */
  long retiredSlots() {
    long stamp = lock.readLock();
    try {
      return retired;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  private int pins(int slot) {
    return (int) PINS.getVolatile(chunkPins[slot / CHUNK_SLOTS], slot % CHUNK_SLOTS);
  }

  /**
   * Under the write lock: when {@code slot} is pinned, marks it retired (its last unpin frees it) and
   * returns true; when not, returns false and the caller may reuse or free it at once (no new pin can
   * come while the write lock is held).
   */
  private boolean retire(int slot) {
    int[] pins = chunkPins[slot / CHUNK_SLOTS];
    int i = slot % CHUNK_SLOTS;
    for (;;) {
      int n = (int) PINS.getVolatile(pins, i);
      if (n == 0) {
        return false;
      }
      if (PINS.compareAndSet(pins, i, n, n | RETIRED)) {
        retired++;
        return true;
      }
    }
  }

  @Override
  public boolean contains(int namespace, long page) {
    long stamp = lock.readLock();
    try {
      return !closed && index.get(PageStore.key(namespace, page)) != LongIntIndex.MISSING;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public long delete(int namespace, long firstPage, long count) {
    long stamp = lock.writeLock();
    try {
      checkOpen();
      long held = perNamespace.get(namespace);
      long deleted = 0;
      if (count > 2 * held) {
        // A huge range (a whole-device TRIM) over few pages: walk the stored pages instead of the range.
        deleted = removeWhere(namespace, firstPage, count);
      } else {
        for (long i = 0; i < count; i++) {
          deleted += removeLocked(namespace, firstPage + i);
        }
      }
      return deleted;
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  @Override
  public long deleteNamespace(int namespace) {
    long stamp = lock.writeLock();
    try {
      checkOpen();
      long deleted = removeWhere(namespace, 0, Long.MAX_VALUE);
      perNamespace.clear(namespace);
      return deleted;
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  @Override
  public long list(int namespace, long cursor, int max, PageSink sink) {
    long stamp = lock.readLock();
    try {
      checkOpen();
      long total = (long) chunks.length * CHUNK_SLOTS;
      long slot = Math.max(0, cursor);
      int found = 0;
      int scanned = 0;
      while (slot < total && found < max && scanned < SCAN_PER_CALL) {
        int c = (int) (slot / CHUNK_SLOTS);
        if (chunkKeys[c] == null) {
          int next = chunksAllocated.nextSetBit(c + 1);
          slot = next < 0 ? total : (long) next * CHUNK_SLOTS;
          continue;
        }
        long key = chunkKeys[c][(int) (slot % CHUNK_SLOTS)];
        if (key != NO_KEY && PageStore.namespaceOf(key) == namespace) {
          sink.page(PageStore.pageOf(key), chunkStamps[c][(int) (slot % CHUNK_SLOTS)]);
          found++;
        }
        slot++;
        scanned++;
      }
      return slot >= total ? LIST_END : slot;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  /** Removes the namespace's pages in [first, first + count) by walking the slots; holds the write lock. */
  private long removeWhere(int namespace, long first, long count) {
    long deleted = 0;
    for (int c = chunksAllocated.nextSetBit(0); c >= 0; c = chunksAllocated.nextSetBit(c + 1)) {
      long[] keys = chunkKeys[c];
      for (int i = 0; i < CHUNK_SLOTS && keys == chunkKeys[c]; i++) {
        long key = keys[i];
        if (key != NO_KEY && PageStore.namespaceOf(key) == namespace) {
          long page = PageStore.pageOf(key);
          if (page >= first && page - first < count) {
            deleted += removeLocked(namespace, page);
          }
        }
      }
    }
    return deleted;
  }

  private int removeLocked(int namespace, long page) {
    int slot = index.remove(PageStore.key(namespace, page));
    if (slot == LongIntIndex.MISSING) {
      return 0;
    }
    if (retire(slot)) {
      chunkKeys[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = NO_KEY;
    } else {
      freeSlot(slot);
    }
    used--;
    perNamespace.add(namespace, -1);
    return 1;
  }

  @Override
  public long pageCount(int namespace) {
    long stamp = lock.readLock();
    try {
      return perNamespace.get(namespace);
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public long usedPages() {
    long stamp = lock.readLock();
    try {
      return used;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public long capacityPages() {
    return capacityPages;
  }

  /** Direct memory held by page chunks right now: follows the pages stored, not the capacity. */
  public long allocatedBytes() {
    long stamp = lock.readLock();
    try {
      return (long) chunksAllocated.cardinality() * CHUNK_BYTES;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public void close() {
    long stamp = lock.writeLock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      for (int c = 0; c < chunks.length; c++) {
        if (chunks[c] != null) {
          chunks[c].release();
          chunks[c] = null;
          chunkStamps[c] = null;
          chunkTags[c] = null;
          chunkKeys[c] = null;
        }
      }
      index.clear();
      used = 0;
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  /** The page's slot, or MISSING; under the lock. */
  private int slotOf(int namespace, long page) {
    checkOpen();
    return index.get(PageStore.key(namespace, page));
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("page store is closed");
    }
  }

  private static int offset(int slot) {
    return (slot % CHUNK_SLOTS) * Pages.PAGE_SIZE;
  }

  private int slotsIn(int chunk) {
    return (int) Math.min(CHUNK_SLOTS, capacityPages - (long) chunk * CHUNK_SLOTS);
  }

  private int allocateSlot() {
    int c = chunksWithRoom.nextSetBit(0);
    if (c < 0) {
      c = chunksAllocated.nextClearBit(0);
      chunks[c] = alloc.directBuffer(CHUNK_BYTES, CHUNK_BYTES);
      chunkStamps[c] = new long[CHUNK_SLOTS];
      chunkTags[c] = new byte[CHUNK_SLOTS * TAG_SIZE];
      chunkKeys[c] = new long[CHUNK_SLOTS];
      Arrays.fill(chunkKeys[c], NO_KEY);
      chunkPins[c] = new int[CHUNK_SLOTS];
      chunksAllocated.set(c);
      chunksWithRoom.set(c);
      emptyChunks++;
    }
    int local;
    if (chunkFreeHead[c] != NONE) {
      local = chunkFreeHead[c];
      chunkFreeHead[c] = chunks[c].getInt(local * Pages.PAGE_SIZE);
    } else {
      local = chunkBump[c]++;
    }
    if (chunkLive[c]++ == 0) {
      emptyChunks--;
    }
    if (chunkLive[c] == slotsIn(c)) {
      chunksWithRoom.clear(c);
    }
    return c * CHUNK_SLOTS + local;
  }

  private void freeSlot(int slot) {
    int c = slot / CHUNK_SLOTS;
    int local = slot % CHUNK_SLOTS;
    chunks[c].setInt(local * Pages.PAGE_SIZE, chunkFreeHead[c]);
    chunkKeys[c][local] = NO_KEY;
    chunkFreeHead[c] = local;
    chunksWithRoom.set(c);
    if (--chunkLive[c] == 0) {
      if (emptyChunks == 0) {
        emptyChunks = 1;
      } else {
        chunks[c].release();
        chunks[c] = null;
        chunkStamps[c] = null;
        chunkTags[c] = null;
        chunkKeys[c] = null;
        chunkPins[c] = null; // no slot of an empty chunk is pinned: pinned slots count as live
        chunksAllocated.clear(c);
        chunksWithRoom.clear(c);
        chunkFreeHead[c] = NONE;
        chunkBump[c] = 0;
      }
    }
  }
}
