package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.vmd.meta.MetaException;
import io.vmd.meta.NamespaceMeta;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.Arrays;
import java.util.Collection;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.LoggerFactory;

/**
 * An attached namespace: page reads, writes and deletes spread over the cluster. This class is the
 * handle and its state (ownership, the server set, the location table); the paths themselves are
 * {@link PageWrites}, {@link PageReads} and {@link PageRepair}.
 *
 * <p>Writes place each run of new pages (up to {@link #PLACEMENT_RUN} adjacent pages, one frame) on
 * R servers chosen by the placement policy; rewritten pages go where they already live. Adjacent
 * pages with the same servers travel in one frame. The caller orders operations on the same page
 * (the NBD gateway does); operations on different pages may run concurrently from any thread.
 *
 * <p>Buffers passed in must stay untouched until the returned future completes.
 */
public final class Namespace {
  /** Most adjacent new pages placed together: big writes still spread over the servers. */
  static final int PLACEMENT_RUN = 32;

  final VmdClient client;
  final NamespaceRecord record;
  final LocationTable locations;
  final boolean writable;
  /** The stamp of the next write: every copy it makes carries it (see {@link Frame}). */
  final AtomicLong nextStamp;
  /** Slots of the servers that may hold pages of it (ascending), as the control plane last said. */
  volatile int[] serverSet;
  /** Servers of the set that had not listed their pages when attach gave up waiting; null when none. */
  volatile Late late;
  final PageWrites writes;
  final PageReads reads;
  final PageRepair repair;
  /** Another owner took the namespace over: this handle writes no more. */
  volatile boolean fenced;
  /** Seals and opens its pages; null when its pages are not sealed. */
  final PageSeal seal;
  /** The newest stamp known of each page (sealed namespaces only, else null). */
  final StampTable newest;
  /** Bytes of one page on the wire: 4096, or a sealed record. */
  final int recordBytes;

  Namespace(VmdClient client, NamespaceMeta meta, LocationTable locations, boolean writable,
      long firstStamp, Late late, PageSeal seal, StampTable newest) {
    this.client = client;
    this.seal = seal;
    this.newest = newest;
    this.recordBytes = seal == null ? Pages.PAGE_SIZE : PageSeal.RECORD;
    this.record = meta.record();
    this.locations = locations;
    this.writable = writable;
    this.nextStamp = new AtomicLong(firstStamp);
    this.serverSet = meta.servers();
    this.late = late;
    this.writes = new PageWrites(this);
    this.reads = new PageReads(this);
    this.repair = new PageRepair(this);
  }

  /**
   * Servers of the namespace's set that had not answered when the attach stopped waiting, with the
   * newest-copy merge kept open for them: until each has listed its pages, a page nobody listed is not
   * known to be a hole.
   */
  static final class Late {
    final NewestCopies copies;
    final Set<Integer> pending;

    Late(NewestCopies copies, Collection<Integer> pending) {
      this.copies = copies;
      this.pending = ConcurrentHashMap.newKeySet();
      this.pending.addAll(pending);
    }
  }

  /** Whether this handle may write: it owns the namespace (and has not been fenced since). */
  public boolean writable() {
    return writable && !fenced;
  }

  /** Whether it was attached read-only (another owner held it); a handle fenced later is not read-only but stale. */
  public boolean readOnly() {
    return !writable;
  }

  /** Whether every server that may hold pages of it has listed them: a page not stored is then a hole. */
  public boolean complete() {
    return late == null;
  }

  /** Servers of its set still to list their pages (empty once complete). */
  public Set<Integer> unresolvedServers() {
    Late l = late;
    return l == null ? Set.of() : Set.copyOf(l.pending);
  }

  /** Whether another owner took the namespace over after this handle wrote it: it writes no more. */
  public boolean fenced() {
    return fenced;
  }

  void fence() {
    fenced = true;
  }

  /**
   * Gives up ownership (when this handle holds it), so another client or gateway may take the
   * namespace at once rather than after the lease; the handle then only reads.
   */
  public void release() {
    client.detached(this);
    if (writable && !fenced) {
      fenced = true;
      try {
        client.meta().release(record.id(), client.ownerId(), record.epoch());
      } catch (MetaException e) {
        // Someone took it over already, or the control plane is away: the lease runs out by itself.
      }
    }
  }

  /**
   * Tries the servers that had not answered at attach again; merges what each lists, keeping of every
   * page the newest copy (a page written since the attach is newer than anything they hold).
   */
  synchronized void resolveLate() {
    Late l = late;
    if (l == null) {
      return;
    }
    for (int slot : l.pending) {
      ServerState s = client.server(slot);
      if (s == null || s.removed()) {
        l.pending.remove(slot);
        continue;
      }
      if (!s.up()) {
        continue;
      }
      try {
        VmdClient.await(client.calls().catchUpAndList(slot, record, l.copies::offer), client.config().requestTimeout().toMillis());
      } catch (VmdException e) {
        continue;
      }
      l.pending.remove(slot);
      if (writable()) {
        for (ServerState other : client.membership().members()) {
          long[] d = l.copies.discarded(other.index());
          if (d.length > 0) {
            deleteCopies(other.index(), d);
          }
        }
      }
      LoggerFactory.getLogger(Namespace.class).info("namespace '{}': server {} answered late; its pages are known now",
          name(), s.address());
    }
    if (l.pending.isEmpty()) {
      late = null;
    }
  }

  boolean inSet(int slot) {
    return Arrays.binarySearch(serverSet, slot) >= 0;
  }

  /**
   * Runs {@code then} once every one of {@code slots} is in the namespace's server set: at once when
   * they are, else after the control plane has added them (the first page a server gets of this
   * namespace waits for that, once). So a later attach never takes a page as a hole while a server
   * that may hold it has not answered.
   */
  void inServerSet(int[] chosen, int n, Runnable then, Consumer<VmdException> failed) {
    int[] slots = Arrays.copyOf(chosen, n);
    int[] missing = null;
    int m = 0;
    for (int i = 0; i < n; i++) {
      if (!inSet(slots[i])) {
        if (missing == null) {
          missing = new int[n];
        }
        missing[m++] = slots[i];
      }
    }
    if (missing == null) {
      then.run();
      return;
    }
    client.meta().addServersAsync(record.id(), client.ownerId(), record.epoch(), Arrays.copyOf(missing, m))
        .whenComplete((meta, e) -> client.eventLoopGroup().execute(() -> {
          if (e != null) {
            VmdException v = VmdException.from(e);
            if (v.code() == ErrorCode.STALE_EPOCH) {
              fence();
            }
            failed.accept(v);
            return;
          }
          serverSet = meta.servers();
          // Tell the new servers the epoch now, rather than have the first write meet NOT_READY.
          CompletableFuture<?>[] told = new CompletableFuture<?>[slots.length];
          for (int i = 0; i < told.length; i++) {
            told[i] = client.calls().to(slots[i], Op.NS_ATTACH).namespace(record.id(), record.epoch()).send(f -> null);
          }
          CompletableFuture.allOf(told).whenComplete((v, x) -> client.eventLoopGroup().execute(then));
        }));
  }

  public NamespaceRecord record() {
    return record;
  }

  public String name() {
    return record.name();
  }

  public long sizeBytes() {
    return record.sizeBytes();
  }

  public long pages() {
    return record.pages();
  }

  /** The epoch this handle writes with. */
  public long epoch() {
    return record.epoch();
  }

  LocationTable locations() {
    return locations;
  }

  /** Whether some server holds a copy of the page (a page never written, or trimmed, is a hole). */
  public boolean stored(long page) {
    return locations.stored(page);
  }

  /** Pages some server holds a copy of. */
  public long storedPages() {
    return locations.storedPages();
  }

  VmdException outOfRange(long first, long count) {
    return new VmdException(ErrorCode.BAD_REQUEST, "pages " + first + ".." + (first + count - 1)
        + " are outside namespace '" + name() + "' of " + pages() + " pages");
  }

  boolean inRange(long first, long count) {
    return first >= 0 && count >= 0 && first <= pages() && count <= pages() - first;
  }

  // ---------------------------------------------------------------- page I/O (see PageWrites, PageReads, PageRepair)

  /** Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved). */
  public CompletableFuture<Void> write(long firstPage, int count, ByteBuf src) {
    IoOp.Future f = new IoOp.Future();
    writes.write(firstPage, count, src, f);
    return f;
  }

  /**
   * Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved) and calls
   * {@code done} once every replica holds them. {@code src} must stay untouched until then.
   */
  public void write(long firstPage, int count, ByteBuf src, IoCallback done) {
    writes.write(firstPage, count, src, done);
  }

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} when the future completes. Pages never written read as zeros.
   */
  public CompletableFuture<Void> read(long firstPage, int count, ByteBuf dst) {
    IoOp.Future f = new IoOp.Future();
    reads.read(firstPage, count, dst, f);
    return f;
  }

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} before {@code done} runs. Pages never written read as zeros.
   */
  public void read(long firstPage, int count, ByteBuf dst, IoCallback done) {
    reads.read(firstPage, count, dst, done);
  }

  /**
   * Reads {@code count} pages without copying them: {@code done} gets a buffer of exactly
   * {@code count * 4096} readable bytes made of retained slices of the servers' replies (zeros where
   * nothing was written), which it must release. Worth it for large reads; a small read is cheaper
   * copied into a buffer of the caller's.
   */
  public void readShared(long firstPage, int count, ByteBufAllocator alloc, PagesCallback done) {
    reads.readShared(firstPage, count, alloc, done);
  }

  /** Receives the pages of a {@link #readShared} read. */
  @FunctionalInterface
  public interface PagesCallback {
    /** {@code pages} (owned by the callee) on success; null and the error otherwise. */
    void pagesRead(ByteBuf pages, VmdException error);
  }

  /** Deletes the stored pages of the range on every server holding them; memory goes back. */
  public CompletableFuture<Void> delete(long firstPage, long count) {
    return repair.delete(firstPage, count);
  }

  /**
   * Gives every stored page of [first, first + count) that has a copy on a server that will not keep it
   * (down, removed, draining) a new copy on a live server holding none; completes with the copies made.
   * The caller orders it like a write (see {@link Repairer}).
   */
  public CompletableFuture<Integer> rereplicate(long first, int count) {
    return repair.rereplicate(first, count);
  }

  /**
   * Brings the location table and {@code server} back in line for pages [first, first + count) after
   * the server rejoined, given the pages it holds; completes with the stale copies deleted.
   */
  public CompletableFuture<Long> reconcile(int server, long[] held, long first, long count) {
    return repair.reconcile(server, held, first, count);
  }

  CompletableFuture<Void> deleteCopies(int server, long[] pages) {
    return repair.deleteCopies(server, pages);
  }

  // ---------------------------------------------------------------- state

  /**
   * How many of the page's copies sit on live servers (0 for a page never written: check
   * {@link LocationTable#stored}).
   */
  public int liveCopies(long page) {
    int live = 0;
    for (int r = 0; r < locations.replicas(); r++) {
      int s = locations.get(page, r);
      if (s != LocationTable.NONE && keeps(s)) {
        live++;
      }
    }
    return live;
  }

  boolean up(int slot) {
    ServerState s = client.server(slot);
    return s != null && s.up();
  }

  /** A copy that stays: on a server that is up and not draining. */
  boolean keeps(int slot) {
    ServerState s = client.server(slot);
    return s != null && s.up() && s.status() != ServerStatus.DRAINING;
  }

  VmdException readOnlyError() {
    return new VmdException(ErrorCode.READ_ONLY, "namespace '" + name() + "' is attached read-only here"
        + " (another client or gateway owns it; a hand-off with vmd ns attach moves it)");
  }

  VmdException fencedError() {
    return new VmdException(ErrorCode.STALE_EPOCH, "namespace '" + name() + "' was taken over by another owner; "
        + "this handle (epoch " + record.epoch() + ") writes no more");
  }

  // ---------------------------------------------------------------- blocking conveniences

  public void writeSync(long firstPage, byte[] data) throws VmdException {
    if (data.length % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "data is not a whole number of pages");
    }
    VmdClient.await(write(firstPage, data.length / Pages.PAGE_SIZE, Unpooled.wrappedBuffer(data)),
        client.config().operationTimeoutMillis());
  }

  public byte[] readSync(long firstPage, int count) throws VmdException {
    if (count < 0 || count > Integer.MAX_VALUE / Pages.PAGE_SIZE) {
      throw new VmdException(ErrorCode.BAD_REQUEST, count + " pages do not fit one array: read at most "
          + Integer.MAX_VALUE / Pages.PAGE_SIZE + " at a time");
    }
    ByteBuf dst = Unpooled.buffer(count * Pages.PAGE_SIZE);
    VmdClient.await(read(firstPage, count, dst), client.config().operationTimeoutMillis());
    return dst.array();
  }

  public void deleteSync(long firstPage, long count) throws VmdException {
    VmdClient.await(delete(firstPage, count), client.config().operationTimeoutMillis());
  }
}
