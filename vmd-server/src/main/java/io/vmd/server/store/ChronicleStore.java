package io.vmd.server.store;

import io.netty.buffer.ByteBuf;
import io.vmd.protocol.Pages;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.concurrent.locks.StampedLock;
import net.openhft.chronicle.hash.Data;
import net.openhft.chronicle.map.ChronicleMap;
import net.openhft.chronicle.map.ChronicleMapBuilder;
import net.openhft.chronicle.map.ExternalMapQueryContext;
import net.openhft.chronicle.map.MapEntry;
import net.openhft.chronicle.map.MapSegmentContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pages in a Chronicle Map, either in memory or persisted to a file so that an intermediate host can
 * extend onto SSD and keep its pages across a restart.
 *
 * <p>Chronicle reserves virtual space for every entry up front but the OS commits memory (or file
 * blocks, the file is sparse) only when an entry is written; a deleted entry's space goes back to the
 * map's own free list, not to the OS. The exact capacity and the all-or-nothing batch are ours: the
 * map is sized with headroom and a {@link StampedLock} makes each batch write atomic.
 *
 * <p>A value is the page followed by its 8-byte stamp (big-endian) and its 16-byte seal tag (zeros
 * for an unsealed page), so page, version and tag are written together and survive a crash together.
 */
public final class ChronicleStore implements PageStore {
  private static final Logger LOG = LoggerFactory.getLogger(ChronicleStore.class);
  /** Format 3: values carry the page's stamp and seal tag. */
  private static final String FILE = "pages-v3.cmap";
  /** Formats 1 (pages without stamps) and 2 (without tags); refused rather than read wrongly. */
  private static final String[] OLD_FILES = {"pages.cmap", "pages-v2.cmap"};
  private static final int TAG_AT = Pages.PAGE_SIZE + 8;
  private static final int VALUE_SIZE = TAG_AT + TAG_SIZE;
  private static final String CLEAN_MARK = "pages.clean";

  private final long capacityPages;
  private final ChronicleMap<Long, byte[]> map;
  private final Path dataDir;
  private final StampedLock lock = new StampedLock();
  private final NamespacePageCounts perNamespace = new NamespacePageCounts();
  private final byte[] writeScratch = new byte[VALUE_SIZE];
  private final ThreadLocal<byte[]> readScratch = ThreadLocal.withInitial(() -> new byte[VALUE_SIZE]);
  private long used;
  private boolean closed;

  /** An in-memory map. */
  public static ChronicleStore inMemory(long capacityBytes) {
    return new ChronicleStore(capacityBytes, null);
  }

  /** A map persisted under {@code dataDir}; an existing file is opened with all its pages. */
  public static ChronicleStore persisted(long capacityBytes, Path dataDir) {
    return new ChronicleStore(capacityBytes, dataDir);
  }

  private ChronicleStore(long capacityBytes, Path dataDir) {
    System.setProperty("chronicle.analytics.disable", "true");
    this.capacityPages = capacityBytes / Pages.PAGE_SIZE;
    if (capacityPages < 1) {
      throw new IllegalArgumentException("capacity " + capacityBytes + " holds no page");
    }
    this.dataDir = dataDir;
    ChronicleMapBuilder<Long, byte[]> builder = ChronicleMap.of(Long.class, byte[].class)
        .name("vmd-pages")
        .entries(Math.max(1024, capacityPages + capacityPages / 8))
        .constantValueSizeBySample(new byte[VALUE_SIZE]);
    try {
      if (dataDir == null) {
        map = builder.create();
      } else {
        Files.createDirectories(dataDir);
        for (String old : OLD_FILES) {
          if (Files.exists(dataDir.resolve(old))) {
            throw new IllegalStateException(dataDir.resolve(old) + " was written by an older VMD whose"
                + " pages carry no version or seal tag; this one cannot read them right. Move it away (its"
                + " pages are re-replicated from the other servers) or run the older VMD to drain it");
          }
        }
        File file = dataDir.resolve(FILE).toFile();
        Path mark = dataDir.resolve(CLEAN_MARK);
        boolean existed = file.exists();
        if (existed && !Files.exists(mark)) {
          LOG.warn("{} was not closed cleanly; recovering it", file);
          map = builder.recoverPersistedTo(file, true);
        } else {
          map = builder.createPersistedTo(file);
        }
        Files.deleteIfExists(mark);
        if (existed) {
          map.forEachEntry(e -> {
            perNamespace.add(PageStore.namespaceOf(e.key().get()), 1);
            used++;
          });
          LOG.info("opened {} with {} pages", file, used);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the Chronicle page store in " + dataDir, e);
    }
    if (used > capacityPages) {
      LOG.warn("{} holds {} pages, more than the capacity of {}; no new page fits until some go",
          dataDir, used, capacityPages);
    }
  }

  @Override
  public String engine() {
    return dataDir == null ? "chronicle" : "chronicle-persisted";
  }

  @Override
  public boolean write(int namespace, long firstPage, int count, ByteBuf src, long version, boolean sealed) {
    long stamp = lock.writeLock();
    try {
      checkOpen();
      long fresh = 0;
      for (int i = 0; i < count; i++) {
        if (!map.containsKey(PageStore.key(namespace, firstPage + i))) {
          fresh++;
        }
      }
      if (used + fresh > capacityPages) {
        return false;
      }
      for (int b = 0; b < 8; b++) {
        writeScratch[Pages.PAGE_SIZE + b] = (byte) (version >>> (56 - 8 * b));
      }
      int srcIndex = src.readerIndex();
      int record = sealed ? Pages.PAGE_SIZE + TAG_SIZE : Pages.PAGE_SIZE;
      if (!sealed) {
        Arrays.fill(writeScratch, TAG_AT, VALUE_SIZE, (byte) 0);
      }
      for (int i = 0; i < count; i++, srcIndex += record) {
        src.getBytes(srcIndex, writeScratch, 0, Pages.PAGE_SIZE);
        if (sealed) {
          src.getBytes(srcIndex + Pages.PAGE_SIZE, writeScratch, TAG_AT, TAG_SIZE);
        }
        if (putWithoutOldValue(PageStore.key(namespace, firstPage + i))) {
          used++;
          perNamespace.add(namespace, 1);
        }
      }
      return true;
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  /**
   * Stores {@link #writeScratch} under the key through a query context: unlike {@code map.put}, it
   * does not read the old value back into a fresh 4 KiB array. Returns true when the key was new.
   */
  private boolean putWithoutOldValue(long key) {
    try (ExternalMapQueryContext<Long, byte[], ?> q = map.queryContext(key)) {
      q.updateLock().lock();
      MapEntry<Long, byte[]> entry = q.entry();
      Data<byte[]> value = q.wrapValueAsData(writeScratch);
      if (entry != null) {
        q.replaceValue(entry, value);
        return false;
      }
      q.insert(q.absentEntry(), value);
      return true;
    }
  }

  @Override
  public long read(int namespace, long page, ByteBuf dst, boolean sealed) {
    byte[] scratch = readScratch.get();
    long stamp = lock.readLock();
    try {
      checkOpen();
      if (map.getUsing(PageStore.key(namespace, page), scratch) == null) {
        return NO_STAMP;
      }
    } finally {
      lock.unlockRead(stamp);
    }
    dst.writeBytes(scratch, 0, Pages.PAGE_SIZE);
    if (sealed) {
      dst.writeBytes(scratch, TAG_AT, TAG_SIZE);
    }
    long version = 0;
    for (int b = 0; b < 8; b++) {
      version = (version << 8) | (scratch[Pages.PAGE_SIZE + b] & 0xff);
    }
    return version;
  }

  /** Reads the stamp in place, without copying the page out. */
  private static long stampOf(Data<byte[]> value) {
    long v = 0;
    long at = value.offset() + Pages.PAGE_SIZE;
    for (int b = 0; b < 8; b++) {
      v = (v << 8) | (value.bytes().readByte(at + b) & 0xff);
    }
    return v;
  }

  @Override
  public boolean contains(int namespace, long page) {
    long stamp = lock.readLock();
    try {
      return !closed && map.containsKey(PageStore.key(namespace, page));
    } finally {
      lock.unlockRead(stamp);
    }
  }

  @Override
  public long delete(int namespace, long firstPage, long count) {
    long stamp = lock.writeLock();
    try {
      checkOpen();
      long deleted = 0;
      if (count > 2 * perNamespace.get(namespace)) {
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

  private int removeLocked(int namespace, long page) {
    if (map.remove(PageStore.key(namespace, page)) == null) {
      return 0;
    }
    used--;
    perNamespace.add(namespace, -1);
    return 1;
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

  /**
   * Listing positions are the map's segments: an entry stays in its segment (chosen by its key's
   * hash) while it is stored, so whole segments listed one call at a time list each such page once.
   */
  @Override
  public long list(int namespace, long cursor, int max, PageSink sink) {
    long stamp = lock.readLock();
    try {
      checkOpen();
      int segment = (int) Math.max(0, cursor);
      int found = 0;
      int[] n = {0};
      while (segment < map.segments() && found < max) {
        n[0] = 0;
        try (MapSegmentContext<Long, byte[], ?> c = map.segmentContext(segment)) {
          c.forEachSegmentEntry(e -> {
            long key = e.key().get();
            if (PageStore.namespaceOf(key) == namespace) {
              sink.page(PageStore.pageOf(key), stampOf(e.value()));
              n[0]++;
            }
          });
        }
        found += n[0];
        segment++;
      }
      return segment >= map.segments() ? LIST_END : segment;
    } finally {
      lock.unlockRead(stamp);
    }
  }

  /** Removes the namespace's pages in [first, first + count), a segment at a time; holds the write lock. */
  private long removeWhere(int namespace, long first, long count) {
    long deleted = 0;
    ArrayList<Long> keys = new ArrayList<>();
    for (int segment = 0; segment < map.segments(); segment++) {
      keys.clear();
      try (MapSegmentContext<Long, byte[], ?> c = map.segmentContext(segment)) {
        c.forEachSegmentEntry(e -> {
          long key = e.key().get();
          long page = PageStore.pageOf(key);
          if (PageStore.namespaceOf(key) == namespace && page >= first && page - first < count) {
            keys.add(key);
          }
        });
      }
      for (long key : keys) {
        deleted += removeLocked(namespace, PageStore.pageOf(key));
      }
    }
    return deleted;
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

  @Override
  public void close() {
    long stamp = lock.writeLock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      map.close();
      if (dataDir != null) {
        Files.write(dataDir.resolve(CLEAN_MARK), new byte[0]);
      }
    } catch (IOException e) {
      LOG.warn("could not mark {} as cleanly closed: {}", dataDir, e.toString());
    } finally {
      lock.unlockWrite(stamp);
    }
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("page store is closed");
    }
  }
}
