package io.vmd.migration.swap;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.PageCopy;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Pages;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The page at swap offset N of a namespace, read through {@link VmdClient} from any host: how the
 * destination of a migration fetches the cold pages of a VM whose swap device is that namespace
 * (swap offset = NBD offset / 4096 = page index).
 *
 * <p>The namespace is attached read-only, so the writer on the source keeps its epoch. A swap offset
 * is a page the source says is swapped out, so it must exist: an offset this host does not know
 * (written after the attach) refreshes the location table once; one still unknown is an error, never
 * a page of zeros. With a read-ahead window of w pages, a miss reads [N, N + w) in one request and
 * keeps the last few windows, since swap-outs of neighbouring pages land in neighbouring slots.
 */
public final class SwapPageSource implements AutoCloseable {
  private static final int WINDOWS = 8;

  private final VmdClient client;
  private final String name;
  private final int readAhead;
  private final ExecutorService refresher;
  private volatile Namespace ns;
  private final Window[] windows = new Window[WINDOWS];
  private long useClock;
  private final AtomicLong fetched = new AtomicLong();
  private final AtomicLong hits = new AtomicLong();
  private final AtomicLong refreshes = new AtomicLong();

  /**
   * Reads by swap offset through a namespace handle this host already holds (the destination's own
   * writer after switch-over): no attach, and pages written through that handle are known at once.
   * Call {@link #invalidate} when a slot is rewritten, so no read-ahead window serves its old bytes.
   */
  public static SwapPageSource over(Namespace ns, int readAheadPages) {
    if (readAheadPages < 1 || readAheadPages > Frame.MAX_PAGES) {
      throw new IllegalArgumentException("read-ahead must be 1.." + Frame.MAX_PAGES + " pages");
    }
    return new SwapPageSource(null, ns.name(), readAheadPages, ns);
  }

  /** Drops any read-ahead window holding {@code offset}: its slot was written since. */
  public void invalidate(long offset) {
    synchronized (windows) {
      for (int i = 0; i < WINDOWS; i++) {
        Window w = windows[i];
        if (w != null && offset >= w.base && offset < w.base + w.count) {
          w.drop();
          windows[i] = null;
        }
      }
    }
  }

  private SwapPageSource(VmdClient client, String name, int readAhead, Namespace ns) {
    this.client = client;
    this.name = name;
    this.readAhead = readAhead;
    this.ns = ns;
    this.refresher = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "vmd-swap-refresh-" + name);
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Opens namespace {@code name} for reading by swap offset.
   *
   * @param readAheadPages pages fetched per miss (1: no read-ahead)
   */
  public static SwapPageSource open(VmdClient client, String name, int readAheadPages) throws VmdException {
    if (readAheadPages < 1 || readAheadPages > Frame.MAX_PAGES) {
      throw new IllegalArgumentException("read-ahead must be 1.." + Frame.MAX_PAGES + " pages");
    }
    return new SwapPageSource(client, name, readAheadPages, client.attach(name, false));
  }

  public String namespace() {
    return name;
  }

  /** Pages fetched from the servers (read-ahead included). */
  public long pagesFetched() {
    return fetched.get();
  }

  /** Reads served from a read-ahead window without a request of their own. */
  public long readAheadHits() {
    return hits.get();
  }

  /** Location-table refreshes caused by offsets written after the attach. */
  public long refreshes() {
    return refreshes.get();
  }

  /** Re-reads where every page of the namespace lives (pages written since the attach become readable). */
  public void refresh() throws VmdException {
    if (client == null) {
      return; // over a handle of this host's: it already knows every page written through it
    }
    ns = client.attach(name, false);
    refreshes.incrementAndGet();
    synchronized (windows) {
      for (int i = 0; i < WINDOWS; i++) {
        if (windows[i] != null) {
          windows[i].drop();
          windows[i] = null;
        }
      }
    }
  }

  /** Copies the page at swap offset {@code offset} into {@code dst} at its writer index (moved on by 4096). */
  public CompletableFuture<Void> read(long offset, ByteBuf dst) {
    dst.ensureWritable(Pages.PAGE_SIZE);
    int at = dst.writerIndex();
    return readAt(offset, dst, at).thenRun(() -> dst.writerIndex(Math.max(dst.writerIndex(), at + Pages.PAGE_SIZE)));
  }

  /** Reads {@code count} pages by offset into {@code dst}, in the order given, in as few requests as runs allow. */
  public CompletableFuture<Void> readBatch(long[] offsets, int count, ByteBuf dst) {
    dst.ensureWritable(count * Pages.PAGE_SIZE);
    int base = dst.writerIndex();
    CompletableFuture<?>[] parts = new CompletableFuture<?>[count];
    int n = 0;
    int i = 0;
    while (i < count) {
      int j = i + 1;
      while (j < count && offsets[j] == offsets[j - 1] + 1 && j - i < Frame.MAX_PAGES) {
        j++;
      }
      parts[n++] = j - i == 1 ? readAt(offsets[i], dst, base + i * Pages.PAGE_SIZE)
          : readRun(offsets[i], j - i, dst, base + i * Pages.PAGE_SIZE);
      i = j;
    }
    return CompletableFuture.allOf(Arrays.copyOf(parts, n))
        .thenRun(() -> dst.writerIndex(base + count * Pages.PAGE_SIZE));
  }

  public byte[] readSync(long offset) throws VmdException {
    ByteBuf b = Unpooled.buffer(Pages.PAGE_SIZE);
    VmdClient.await(read(offset, b), client.config().operationTimeoutMillis());
    return b.array();
  }

  private CompletableFuture<Void> readAt(long offset, ByteBuf dst, int dstIndex) {
    return known(offset, 1).thenCompose(v -> {
      Window w = window(offset);
      CompletableFuture<Void> copied = new CompletableFuture<>();
      w.ready.whenComplete((x, e) -> {
        try {
          if (e == null) {
            PageCopy.copy(w.buf, (int) (offset - w.base) * Pages.PAGE_SIZE, dst, dstIndex, Pages.PAGE_SIZE);
            copied.complete(null);
          } else {
            copied.completeExceptionally(e);
          }
        } catch (RuntimeException ex) {
          copied.completeExceptionally(ex);
        } finally {
          w.buf.release();
        }
      });
      return copied;
    });
  }

  /** A run of consecutive offsets straight into the destination, no window. */
  private CompletableFuture<Void> readRun(long first, int count, ByteBuf dst, int dstIndex) {
    return known(first, count).thenCompose(v -> {
      ByteBuf view = dst.slice(dstIndex, count * Pages.PAGE_SIZE).writerIndex(0);
      fetched.addAndGet(count);
      return ns.read(first, count, view);
    });
  }

  /** Completes once every offset in [first, first + count) is known here, refreshing at most once. */
  private CompletableFuture<Void> known(long first, int count) {
    Namespace current = ns;
    if (first < 0 || first + count > current.pages()) {
      return CompletableFuture.failedFuture(new VmdException(ErrorCode.BAD_REQUEST, "swap offset " + first
          + (count > 1 ? "+" + count : "") + " is outside namespace '" + name + "' of " + current.pages() + " pages"));
    }
    if (allStored(current, first, count)) {
      return CompletableFuture.completedFuture(null);
    }
    return CompletableFuture.runAsync(() -> {
      try {
        if (!allStored(ns, first, count)) {
          refresh();
        }
      } catch (VmdException e) {
        throw new CompletionException(e);
      }
      for (long p = first; p < first + count; p++) {
        if (!ns.stored(p)) {
          throw new CompletionException(new VmdException(ErrorCode.BAD_REQUEST,
              "swap offset " + p + " of namespace '" + name + "' holds no page"));
        }
      }
    }, refresher);
  }

  private static boolean allStored(Namespace n, long first, int count) {
    for (long p = first; p < first + count; p++) {
      if (!n.stored(p)) {
        return false;
      }
    }
    return true;
  }

  /** The window holding {@code offset}, fetched now if none does; retained once for the caller. */
  private Window window(long offset) {
    synchronized (windows) {
      int victim = 0;
      for (int i = 0; i < WINDOWS; i++) {
        Window w = windows[i];
        if (w != null && offset >= w.base && offset < w.base + w.count) {
          w.lastUse = ++useClock;
          if (offset != w.base) {
            hits.incrementAndGet();
          }
          w.buf.retain();
          return w;
        }
        if (w == null || (windows[victim] != null && w.lastUse < windows[victim].lastUse)) {
          victim = i;
        }
      }
      if (windows[victim] != null) {
        windows[victim].drop();
      }
      Namespace current = ns;
      int count = (int) Math.min(readAhead, current.pages() - offset);
      Window w = new Window(offset, count, PooledByteBufAllocator.DEFAULT.directBuffer(count * Pages.PAGE_SIZE));
      w.lastUse = ++useClock;
      windows[victim] = w;
      w.buf.retain();
      fetched.addAndGet(count);
      w.ready = current.read(offset, count, w.buf);
      return w;
    }
  }

  @Override
  public void close() {
    synchronized (windows) {
      for (int i = 0; i < WINDOWS; i++) {
        if (windows[i] != null) {
          windows[i].drop();
          windows[i] = null;
        }
      }
    }
    refresher.shutdownNow();
  }

  /** Pages [base, base + count) fetched together; the array's reference is dropped on eviction. */
  private static final class Window {
    final long base;
    final int count;
    final ByteBuf buf;
    CompletableFuture<Void> ready;
    long lastUse;

    Window(long base, int count, ByteBuf buf) {
      this.base = base;
      this.count = count;
      this.buf = buf;
    }

    void drop() {
      // Readers still copying hold their own reference; the buffer goes when the last one is done.
      ready.whenComplete((v, e) -> buf.release());
    }
  }
}
