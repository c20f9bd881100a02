package io.vmd.migration.guest;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.PageCopy;
import io.vmd.migration.swap.SwapPageSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLongArray;
import org.HdrHistogram.Histogram;

/**
 * An emulated VM's memory, the stand-in for a QEMU guest: pages live off-heap in this process up to a
 * reservation (the resident limit); beyond it a clock algorithm evicts pages to the VM's swap device,
 * a VMD namespace, at slots it allocates, and touching a swapped page reads it back: the kernel's
 * swapping, done by the hypervisor side. On a migration's destination pages start {@code ABSENT} and a
 * {@link FaultHandler} brings each one on first touch.
 *
 * <p>Residency changes and page copies happen under this object's lock (a swap-in holds it for one
 * VMD round trip); waiting for an absent page does not, since the page arrives on another thread. *
 * <p>Why one file of about 520 lines: every operation of the guest's memory takes the same lock over
 * the same residency arrays; the workloads and the fault handler that use it are classes of their own.
 */
public final class EmulatedGuest implements GuestMemory, AutoCloseable {
  /** The longest a swap-in or swap-out may take: past it the guest sees an I/O error, never a hang. */
  private static final long SWAP_IO_TIMEOUT_MILLIS = 60_000;
  /**
   * The guest's RAM: long-lived buffers that are not I/O, so not watched by Netty's leak detector
   * (which, at its paranoid level in the tests, would record a stack trace on every guest memory access).
   */
  private static final ByteBufAllocator GUEST_RAM = new UnpooledByteBufAllocator(true, true);
  static final byte IN_MEMORY = 0;
  static final byte SWAPPED = 1;
  static final byte ABSENT = 2;
  private static final int CHUNK_SHIFT = 14;
  private static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;

  /** Brings an absent page to a destination guest; returns once {@link #install} put it there. */
  public interface FaultHandler {
    void fetch(int page) throws VmdException;
  }

  private final int pages;
  private final ByteBuf[] chunks;
  private final byte[] state;
  private final long[] slot;
  private final byte[] referenced;
  private final long[] slotsUsed;
  private final AtomicLongArray dirty;
  private final AtomicLongArray moved;
  private int residentLimit;
  private int resident;
  private int absent;
  private int hand;
  private long slotHint;
  private Namespace swap;
  private FaultHandler faults;
  private long swapIns;
  private long swapOuts;
  private SwapPageSource reader;
  private final Histogram swapInNanos = new Histogram(3_600_000_000_000L, 2);

  private EmulatedGuest(int pages, int residentLimit, Namespace swap, byte initial) {
    if (swap != null && swap.pages() < pages) {
      throw new IllegalArgumentException("swap namespace '" + swap.name() + "' has " + swap.pages()
          + " pages, the guest " + pages);
    }
    this.pages = pages;
    this.residentLimit = residentLimit;
    this.swap = swap;
    this.chunks = new ByteBuf[(pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT];
    for (int c = 0; c < chunks.length; c++) {
      int n = Math.min(CHUNK_PAGES, pages - c * CHUNK_PAGES);
      chunks[c] = GUEST_RAM.directBuffer(n * PageContent.PAGE, n * PageContent.PAGE);
    }
    this.state = new byte[pages];
    Arrays.fill(state, initial);
    this.slot = new long[pages];
    Arrays.fill(slot, RESIDENT);
    this.referenced = new byte[pages];
    this.slotsUsed = new long[(pages + 63) >>> 6];
    this.dirty = new AtomicLongArray((pages + 63) >>> 6);
    this.moved = new AtomicLongArray((pages + 63) >>> 6);
    this.absent = initial == ABSENT ? pages : 0;
  }

  /**
   * A guest that booted and ran a while: every page holds version 0, the last {@code residentLimit}
   * pages are in memory and the rest were swapped to {@code swap} (slots in page order, written in
   * large batches here rather than one eviction at a time).
   */
  public static EmulatedGuest booted(int pages, int residentLimit, Namespace swap) throws VmdException {
    if (residentLimit < 1 || residentLimit > pages) {
      throw new IllegalArgumentException("resident limit must be 1.." + pages + " pages");
    }
    if (residentLimit < pages && swap == null) {
      throw new IllegalArgumentException("a guest larger than its reservation needs a swap namespace");
    }
    EmulatedGuest g = new EmulatedGuest(pages, residentLimit, swap, IN_MEMORY);
    int cold = pages - residentLimit;
    ByteBuf batch = PooledByteBufAllocator.DEFAULT.directBuffer(256 * PageContent.PAGE);
    try {
      for (int first = 0; first < cold; first += 256) {
        int n = Math.min(256, cold - first);
        batch.clear();
        for (int i = 0; i < n; i++) {
          PageContent.fill(batch, i * PageContent.PAGE, first + i, 0);
        }
        batch.writerIndex(n * PageContent.PAGE);
        VmdClient.await(swap.write(first, n, batch), SWAP_IO_TIMEOUT_MILLIS);
        for (int i = 0; i < n; i++) {
          g.state[first + i] = SWAPPED;
          g.slot[first + i] = first + i;
          g.slotsUsed[(first + i) >>> 6] |= 1L << (first + i);
        }
      }
    } finally {
      batch.release();
    }
    for (int p = cold; p < pages; p++) {
      PageContent.fill(g.chunk(p), g.offset(p), p, 0);
    }
    g.resident = residentLimit;
    g.slotHint = cold & ~63L;
    return g;
  }

  /** A migration's destination: every page absent until installed or found swapped. */
  public static EmulatedGuest destination(int pages, int residentLimit, FaultHandler faults) {
    EmulatedGuest g = new EmulatedGuest(pages, residentLimit, null, ABSENT);
    g.faults = faults;
    return g;
  }

  private ByteBuf chunk(int page) {
    return chunks[page >>> CHUNK_SHIFT];
  }

  private int offset(int page) {
    return (page & (CHUNK_PAGES - 1)) * PageContent.PAGE;
  }

  @Override
  public int pages() {
    return pages;
  }

  public synchronized int residentLimit() {
    return residentLimit;
  }

  /** Changes the reservation; pages beyond it are evicted on the next touch. */
  public synchronized void residentLimit(int limit) {
    if (limit < 1 || limit > pages) {
      throw new IllegalArgumentException("resident limit must be 1.." + pages + " pages");
    }
    residentLimit = limit;
  }

  public synchronized int residentPages() {
    return resident;
  }

  public synchronized int swappedPages() {
    return pages - resident - absent;
  }

  public synchronized boolean isAbsent(int page) {
    return state[page] == ABSENT;
  }

  public synchronized int absentPages() {
    return absent;
  }

  public synchronized long swapIns() {
    return swapIns;
  }

  public synchronized long swapOuts() {
    return swapOuts;
  }

  /** The swap device this guest writes evicted pages to (a destination gets it at switch-over). */
  public synchronized void attachSwap(Namespace ns) {
    attachSwap(ns, null);
  }

  /** As {@link #attachSwap(Namespace)}, reading swapped pages through {@code reader} (read-ahead). */
  public synchronized void attachSwap(Namespace ns, SwapPageSource reader) {
    if (ns.pages() < pages) {
      throw new IllegalArgumentException("swap namespace smaller than the guest");
    }
    swap = ns;
    if (this.reader != null && this.reader != reader) {
      this.reader.close();
    }
    this.reader = reader;
  }

  /** How long swap-ins took (a copy), nanoseconds. */
  public synchronized Histogram swapInLatency() {
    return swapInNanos.copy();
  }

  /** Forgets the swap-in latencies so far (e.g. at a migration's switch-over). */
  public synchronized void resetSwapInLatency() {
    swapInNanos.reset();
  }

  // ---------------------------------------------------------------- what the workload does

  /** Reads a page; true when it holds exactly {@code version} (every byte checked). */
  public boolean read(int page, long version) throws VmdException {
    return access(page, false, version);
  }

  /** Overwrites a page with its content at {@code version}. */
  public void write(int page, long version) throws VmdException {
    access(page, true, version);
  }

  private boolean access(int page, boolean write, long version) throws VmdException {
    while (true) {
      FaultHandler h;
      synchronized (this) {
        if (state[page] != ABSENT) {
          if (state[page] == SWAPPED) {
            swapIn(page);
          }
          referenced[page] = 1;
          // Over the reservation (pages installed by a migration, a smaller limit): shed a few per
          // touch, so the program slows down rather than stopping until all of it is evicted.
          for (int i = 0; i < 8 && resident > residentLimit && evictOne(page); i++) {
            // evicted one
          }
          if (write) {
            PageContent.fill(chunk(page), offset(page), page, version);
            // Dirty after the bytes: a copy taken before this point is resent, never a torn one kept.
            markDirty(page);
            return true;
          }
          return PageContent.matches(chunk(page), offset(page), page, version);
        }
        h = faults;
      }
      if (h == null) {
        throw new IllegalStateException("page " + page + " is absent and nothing fetches it");
      }
      h.fetch(page);
    }
  }

  private void swapIn(int page) throws VmdException {
    while (resident >= residentLimit && evictOne(page)) {
      // make room first
    }
    long s = slot[page];
    long start = System.nanoTime();
    ByteBuf dst = chunk(page).slice(offset(page), PageContent.PAGE).writerIndex(0);
    VmdClient.await(reader != null ? reader.read(s, dst) : swap.read(s, 1, dst), SWAP_IO_TIMEOUT_MILLIS);
    swapInNanos.recordValue(System.nanoTime() - start);
    freeSlot(s);
    slot[page] = RESIDENT;
    state[page] = IN_MEMORY;
    resident++;
    swapIns++;
    mark(moved, page);
  }

  /** Evicts one resident page other than {@code keep} (clock); false when none could go. */
  private boolean evictOne(int keep) throws VmdException {
    if (swap == null) {
      return false;
    }
    for (int scanned = 0; scanned < 2 * pages; scanned++) {
      int p = hand;
      hand = hand + 1 == pages ? 0 : hand + 1;
      if (state[p] != IN_MEMORY || p == keep) {
        continue;
      }
      if (referenced[p] != 0) {
        referenced[p] = 0;
        continue;
      }
      long s = allocateSlot();
      VmdClient.await(swap.write(s, 1, chunk(p).slice(offset(p), PageContent.PAGE)), SWAP_IO_TIMEOUT_MILLIS);
      if (reader != null) {
        reader.invalidate(s);
      }
      slot[p] = s;
      state[p] = SWAPPED;
      resident--;
      swapOuts++;
      mark(moved, p);
      return true;
    }
    return false;
  }

  /**
   * The lowest free slot: freed slots are reused first, so the pages this guest keeps in the VMD stay
   * near the number it has swapped out rather than creeping over the whole namespace.
   */
  private long allocateSlot() {
    for (int w = (int) (slotHint >>> 6); w < slotsUsed.length; w++) {
      long free = ~slotsUsed[w];
      if (w == slotsUsed.length - 1 && (pages & 63) != 0) {
        free &= (1L << (pages & 63)) - 1;
      }
      if (free != 0) {
        long s = ((long) w << 6) + Long.numberOfTrailingZeros(free);
        slotsUsed[w] |= 1L << s;
        slotHint = (long) w << 6;
        return s;
      }
    }
    throw new IllegalStateException("no free swap slot");
  }

  private void freeSlot(long s) {
    slotsUsed[(int) (s >>> 6)] &= ~(1L << s);
    slotHint = Math.min(slotHint, s & ~63L);
  }

  private void markDirty(int page) {
    mark(dirty, page);
  }

  private static void mark(AtomicLongArray bits, int page) {
    int w = page >>> 6;
    long bit = 1L << page;
    long cur;
    do {
      cur = bits.get(w);
    } while ((cur & bit) == 0 && !bits.compareAndSet(w, cur, cur | bit));
  }

  // ---------------------------------------------------------------- what a migration engine does

  @Override
  public synchronized void copyPage(int page, ByteBuf dst, int dstIndex) throws VmdException {
    switch (state[page]) {
      case IN_MEMORY -> PageCopy.copy(chunk(page), offset(page), dst, dstIndex, PageContent.PAGE);
      case SWAPPED -> {
        swapIn(page);
        PageCopy.copy(chunk(page), offset(page), dst, dstIndex, PageContent.PAGE);
      }
      default -> throw new IllegalStateException("page " + page + " is not here");
    }
  }

  @Override
  public synchronized long swapSlot(int page) {
    return state[page] == SWAPPED ? slot[page] : RESIDENT;
  }

  @Override
  public long[] takeDirty() {
    return take(dirty);
  }

  @Override
  public long[] takeMoved() {
    return take(moved);
  }

  private static long[] take(AtomicLongArray bits) {
    long[] out = new long[bits.length()];
    for (int i = 0; i < out.length; i++) {
      out[i] = bits.getAndSet(i, 0);
    }
    return out;
  }

  @Override
  public synchronized long[] slotsInUse() {
    return slotsUsed.clone();
  }

  /** Destination: puts a page that arrived; false (and nothing changes) when the page is already here. */
  public synchronized boolean install(int page, ByteBuf src, int srcIndex) {
    if (state[page] != ABSENT) {
      return false;
    }
    PageCopy.copy(src, srcIndex, chunk(page), offset(page), PageContent.PAGE);
    state[page] = IN_MEMORY;
    absent--;
    resident++;
    return true;
  }

  /** Destination: during a live round, overwrites whatever arrived before (the guest is not running). */
  public synchronized void overwrite(int page, ByteBuf src, int srcIndex) {
    if (state[page] == SWAPPED) {
      freeSlot(slot[page]);
      slot[page] = RESIDENT;
    } else if (state[page] == ABSENT) {
      absent--;
    } else {
      resident--;
    }
    PageCopy.copy(src, srcIndex, chunk(page), offset(page), PageContent.PAGE);
    state[page] = IN_MEMORY;
    resident++;
  }

  /** Destination: the page lives in the VMD at {@code s}. */
  public synchronized void swappedAt(int page, long s) {
    if (state[page] == ABSENT) {
      absent--;
    } else if (state[page] == IN_MEMORY) {
      resident--;
    } else {
      freeSlot(slot[page]);
    }
    state[page] = SWAPPED;
    slot[page] = s;
    slotsUsed[(int) (s >>> 6)] |= 1L << s;
  }

  /** Destination: the page changed at the source after it was sent; it must come again. */
  public synchronized void forget(int page) {
    if (state[page] == IN_MEMORY) {
      resident--;
    } else if (state[page] == SWAPPED) {
      freeSlot(slot[page]);
    } else {
      return;
    }
    state[page] = ABSENT;
    slot[page] = RESIDENT;
    absent++;
  }

  /** Destination: slots the source still reads from; not reused here until {@link #settleSlots}. */
  public synchronized void reserveSlots(long[] bitmap) {
    for (int i = 0; i < Math.min(bitmap.length, slotsUsed.length); i++) {
      slotsUsed[i] |= bitmap[i];
    }
  }

  /** Destination, once nothing is absent: only the slots of this guest's own swapped pages stay used. */
  public synchronized void settleSlots() {
    Arrays.fill(slotsUsed, 0);
    slotHint = 0;
    for (int p = 0; p < pages; p++) {
      if (state[p] == SWAPPED) {
        slotsUsed[(int) (slot[p] >>> 6)] |= 1L << slot[p];
      }
    }
  }

  /**
   * Checks every page against the versions the workload wrote: in memory directly, swapped ones read
   * back from the VMD (many at a time). Returns the pages that differ (or are absent). Call it with the
   * guest's program paused.
   */
  public List<Integer> verify(long[] versions) throws VmdException {
    List<Integer> bad = new ArrayList<>();
    int swapped = 0;
    int[] swappedPages;
    long[] swappedSlots;
    synchronized (this) {
      for (int p = 0; p < pages; p++) {
        if (state[p] == ABSENT || state[p] == IN_MEMORY && !PageContent.matches(chunk(p), offset(p), p, versions[p])) {
          bad.add(p);
        } else if (state[p] == SWAPPED) {
          swapped++;
        }
      }
      swappedPages = new int[swapped];
      swappedSlots = new long[swapped];
      int n = 0;
      for (int p = 0; p < pages; p++) {
        if (state[p] == SWAPPED) {
          swappedPages[n] = p;
          swappedSlots[n++] = slot[p];
        }
      }
    }
    int window = 256;
    ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(window * PageContent.PAGE);
    try {
      for (int at = 0; at < swapped; at += window) {
        int n = Math.min(window, swapped - at);
        CompletableFuture<?>[] reads = new CompletableFuture<?>[n];
        for (int i = 0; i < n; i++) {
          reads[i] = swap.read(swappedSlots[at + i], 1, buf.slice(i * PageContent.PAGE, PageContent.PAGE).writerIndex(0));
        }
        VmdClient.await(CompletableFuture.allOf(reads), SWAP_IO_TIMEOUT_MILLIS);
        for (int i = 0; i < n; i++) {
          int p = swappedPages[at + i];
          if (!PageContent.matches(buf, i * PageContent.PAGE, p, versions[p])) {
            bad.add(p);
          }
        }
      }
    } finally {
      buf.release();
    }
    Collections.sort(bad);
    return bad;
  }

  /** Frees the guest's memory and its swap reader's read-ahead windows. */
  @Override
  public synchronized void close() {
    for (ByteBuf c : chunks) {
      if (c.refCnt() > 0) {
        c.release();
      }
    }
    if (reader != null) {
      reader.close();
      reader = null;
    }
  }
}
