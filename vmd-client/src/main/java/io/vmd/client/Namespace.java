package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.util.Recycler;
import io.vmd.common.PageCopy;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An attached namespace: page reads, writes and deletes spread over the cluster.
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

  private final VmdClient client;
  private final NamespaceRecord record;
  private final LocationTable locations;
  private final boolean writable;
  /** The stamp of the next write: every copy it makes carries it (see {@link Frame}). */
  private final AtomicLong nextStamp;
  /** Slots of the servers that may hold pages of it (ascending), as the control plane last said. */
  private volatile int[] serverSet;
  /** Servers of the set that had not listed their pages when attach gave up waiting; null when none. */
  private volatile Late late;
  /** Another owner took the namespace over: this handle writes no more. */
  private volatile boolean fenced;

  Namespace(VmdClient client, io.vmd.meta.NamespaceMeta meta, LocationTable locations, boolean writable,
      long firstStamp, Late late) {
    this.client = client;
    this.record = meta.record();
    this.locations = locations;
    this.writable = writable;
    this.nextStamp = new AtomicLong(firstStamp);
    this.serverSet = meta.servers();
    this.late = late;
  }

  /**
   * Servers of the namespace's set that had not answered when the attach stopped waiting, with the
   * newest-copy merge kept open for them: until each has listed its pages, a page nobody listed is not
   * known to be a hole.
   */
  static final class Late {
    final NewestCopies copies;
    final java.util.Set<Integer> pending;

    Late(NewestCopies copies, java.util.Collection<Integer> pending) {
      this.copies = copies;
      this.pending = java.util.concurrent.ConcurrentHashMap.newKeySet();
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
  public java.util.Set<Integer> unresolvedServers() {
    Late l = late;
    return l == null ? java.util.Set.of() : java.util.Set.copyOf(l.pending);
  }

  boolean fenced() {
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
      } catch (io.vmd.meta.MetaException e) {
        // Someone took it over already, or the control plane is away: the lease runs out by itself.
      }
    }
  }

  /**
   * Tries the servers that had not answered at attach again; merges what each lists, keeping of every
   * page the newest copy (a page written since the attach is newer than anything they hold).
   */
  void resolveLate() {
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
        VmdClient.await(client.catchUpAndList(slot, record, l.copies::offer), client.config().requestTimeout().toMillis());
      } catch (VmdException e) {
        continue;
      }
      l.pending.remove(slot);
      if (writable()) {
        for (ServerState other : client.serverArray()) {
          long[] d = l.copies.discarded(other.index());
          if (d.length > 0) {
            deleteCopies(other.index(), d);
          }
        }
      }
      org.slf4j.LoggerFactory.getLogger(Namespace.class).info("namespace '{}': server {} answered late; its pages are known now",
          name(), s.address());
    }
    if (l.pending.isEmpty()) {
      late = null;
    }
  }

  private boolean inSet(int slot) {
    return java.util.Arrays.binarySearch(serverSet, slot) >= 0;
  }

  /**
   * Runs {@code then} once every one of {@code slots} is in the namespace's server set: at once when
   * they are, else after the control plane has added them (the first page a server gets of this
   * namespace waits for that, once). So a later attach never takes a page as a hole while a server
   * that may hold it has not answered.
   */
  private void inServerSet(int[] chosen, int n, Runnable then, java.util.function.Consumer<VmdException> failed) {
    int[] slots = java.util.Arrays.copyOf(chosen, n);
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
    client.meta().addServersAsync(record.id(), client.ownerId(), record.epoch(), java.util.Arrays.copyOf(missing, m))
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
            told[i] = client.call(slots[i], Op.NS_ATTACH, record.id(), record.epoch(), null, f -> null);
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

  public LocationTable locations() {
    return locations;
  }

  private VmdException outOfRange(long first, long count) {
    return new VmdException(ErrorCode.BAD_REQUEST, "pages " + first + ".." + (first + count - 1)
        + " are outside namespace '" + name() + "' of " + pages() + " pages");
  }

  private boolean inRange(long first, long count) {
    return first >= 0 && count >= 0 && first <= pages() && count <= pages() - first;
  }

  // ---------------------------------------------------------------- write

  /** Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved). */
  public CompletableFuture<Void> write(long firstPage, int count, ByteBuf src) {
    IoOp.Future f = new IoOp.Future();
    write(firstPage, count, src, f);
    return f;
  }

  /**
   * Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved) and calls
   * {@code done} once every replica holds them. {@code src} must stay untouched until then.
   */
  public void write(long firstPage, int count, ByteBuf src, IoCallback done) {
    if (!writable) {
      done.ioDone(readOnlyError());
      return;
    }
    if (fenced) {
      done.ioDone(fencedError());
      return;
    }
    if (!inRange(firstPage, count)) {
      done.ioDone(outOfRange(firstPage, count));
      return;
    }
    if (src.readableBytes() < (long) count * Pages.PAGE_SIZE) {
      done.ioDone(new VmdException(ErrorCode.BAD_REQUEST,
          src.readableBytes() + " bytes given for " + count + " pages"));
      return;
    }
    Late l = late;
    if (l != null) {
      l.copies.written(firstPage, count);
    }
    WriteOp op = WriteOp.POOL.get();
    op.src = src.retain();
    op.startNanos = System.nanoTime();
    op.stamp = nextStamp.getAndIncrement();
    op.start(done);
    int i = 0;
    while (i < count) {
      long page = firstPage + i;
      int j = i + 1;
      if (locations.stored(page)) {
        while (j < count && j - i < Frame.MAX_PAGES && locations.sameLocation(page, firstPage + j)) {
          j++;
        }
        for (int r = 0; r < locations.replicas(); r++) {
          int server = locations.get(page, r);
          if (server != LocationTable.NONE) {
            sendPut(op, server, page, j - i, i, false, r, op.stamp);
          }
        }
      } else {
        while (j < count && j - i < PLACEMENT_RUN && !locations.stored(firstPage + j)) {
          j++;
        }
        placeAndPut(op, page, j - i, i);
      }
      i = j;
    }
    op.finish();
  }

  private void placeAndPut(WriteOp op, long page, int count, int srcPage) {
    int replicas = locations.replicas();
    int[] chosen = client.placementScratch(replicas);
    long bytes = (long) count * Pages.PAGE_SIZE;
    int n = client.placement().choose(client.serverArray(), replicas, bytes, chosen);
    if (n == replicas) {
      for (int r = 0; r < n; r++) {
        if (!inSet(chosen[r])) {
          // A server new to this namespace: the control plane hears of it first, then the pages go.
          op.begin();
          inServerSet(java.util.Arrays.copyOf(chosen, n), n, () -> {
            placeAndPut(op, page, count, srcPage);
            op.finish();
          }, op::fail);
          return;
        }
      }
    }
    if (n < replicas) {
      boolean someDown = false;
      for (ServerState s : client.serverArray()) {
        someDown |= !s.up();
      }
      if (someDown && System.nanoTime() - op.startNanos + PutFrame.RETRY_NANOS
          < client.config().requestTimeout().toNanos()) {
        // Too few live servers for the replicas right now (one may be restarting): try again shortly
        // rather than fail, up to the request timeout. A full cluster (all up) is NO_SPACE at once.
        op.begin();
        client.eventLoopGroup().schedule(() -> {
          placeAndPut(op, page, count, srcPage);
          op.finish();
        }, PutFrame.RETRY_NANOS, java.util.concurrent.TimeUnit.NANOSECONDS);
        return;
      }
      op.fail(someDown ? new VmdException(ErrorCode.UNAVAILABLE, "only " + n + " live servers with room for "
          + replicas + " replicas of pages " + page + ".." + (page + count - 1) + " of namespace '" + name() + "'")
          : noSpace(count, n));
      return;
    }
    for (int r = 0; r < n; r++) {
      client.server(chosen[r]).placed(bytes);
      for (int k = 0; k < count; k++) {
        locations.set(page + k, r, chosen[r]);
      }
    }
    // From the table, not the scratch array: a send that fails at once may run callbacks that write again.
    for (int r = 0; r < n; r++) {
      sendPut(op, locations.get(page, r), page, count, srcPage, true, r, op.stamp);
    }
  }

  /**
   * A live server with room for {@code bytes} to hold replica {@code slot} of the run starting at
   * {@code page}: one holding no other copy of it and not {@code exclude}; {@link LocationTable#NONE}
   * when there is none. The placement policy's order decides among them.
   */
  int replacementFor(long page, int slot, int exclude, long bytes) {
    ServerState[] servers = client.serverArray();
    int[] candidates = new int[servers.length];
    int n = client.placement().choose(servers, servers.length, bytes, candidates);
    // Servers already in the set first: a replacement there needs no word to the control plane.
    for (int c = 0; c < n; c++) {
      int s = candidates[c];
      boolean holdsOther = s == exclude;
      for (int r = 0; r < locations.replicas(); r++) {
        holdsOther |= r != slot && locations.get(page, r) == s;
      }
      if (!holdsOther && inSet(s)) {
        return s;
      }
    }
    for (int c = 0; c < n; c++) {
      int s = candidates[c];
      boolean holdsOther = s == exclude;
      for (int r = 0; r < locations.replicas(); r++) {
        holdsOther |= r != slot && locations.get(page, r) == s;
      }
      if (!holdsOther) {
        return s;
      }
    }
    return LocationTable.NONE;
  }

  private VmdException noSpace(int count, int found) {
    return new VmdException(ErrorCode.NO_SPACE, "no room in the cluster for " + count
        + " new pages of namespace '" + name() + "' with " + locations.replicas() + " replicas ("
        + found + " servers have room)");
  }

  void sendPut(WriteOp op, int server, long page, int count, int srcPage, boolean fresh, int slot, long stamp) {
    ServerConnection conn = client.connection(server);
    long id = conn.nextId();
    ByteBuf header = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
    Frame.writeHeader(header, Op.PUT, 0, 0, id, record.id(), record.epoch(), page, count, stamp,
        count * Pages.PAGE_SIZE);
    ByteBuf payload = op.src.retainedSlice(op.src.readerIndex() + srcPage * Pages.PAGE_SIZE,
        count * Pages.PAGE_SIZE);
    op.begin();
    conn.send(id, header, payload, PutFrame.of(this, op, server, page, count, srcPage, fresh, slot, stamp));
  }

  static final class WriteOp extends IoOp {
    static final Recycler<WriteOp> POOL = new Recycler<WriteOp>() {
      @Override
      protected WriteOp newObject(Handle<WriteOp> handle) {
        return new WriteOp(handle);
      }
    };

    private final Recycler.Handle<WriteOp> handle;
    ByteBuf src;
    /** When the write began: a copy waiting for a live server may wait until the request timeout. */
    long startNanos;
    long stamp;

    private WriteOp(Recycler.Handle<WriteOp> handle) {
      this.handle = handle;
    }

    @Override
    void done(VmdException error, IoCallback cb) {
      src.release();
      src = null;
      handle.recycle(this);
      cb.ioDone(error);
    }
  }

  /** One PUT frame in flight: a run of pages of one write on one server. */
  static final class PutFrame extends Pending {
    private static final long RETRY_NANOS = 200_000_000L;

    private static final Recycler<PutFrame> POOL = new Recycler<PutFrame>() {
      @Override
      protected PutFrame newObject(Handle<PutFrame> handle) {
        return new PutFrame(handle);
      }
    };

    private final Recycler.Handle<PutFrame> handle;
    private Namespace ns;
    private WriteOp op;
    private int server;
    private long page;
    private int count;
    private int srcPage;
    private boolean fresh;
    private int slot;
    private long stamp;

    private PutFrame(Recycler.Handle<PutFrame> handle) {
      this.handle = handle;
    }

    static PutFrame of(Namespace ns, WriteOp op, int server, long page, int count, int srcPage,
        boolean fresh, int slot, long stamp) {
      PutFrame p = POOL.get();
      p.ns = ns;
      p.op = op;
      p.server = server;
      p.page = page;
      p.count = count;
      p.srcPage = srcPage;
      p.fresh = fresh;
      p.slot = slot;
      p.stamp = stamp;
      return p;
    }

    private void recycle() {
      ns = null;
      op = null;
      handle.recycle(this);
    }

    @Override
    void onReply(ByteBuf f) {
      int status = Frame.status(f);
      WriteOp o = op;
      if (status == 0) {
        recycle();
        o.finish();
      } else if (status == ErrorCode.NO_SPACE.code && fresh) {
        ns.client.server(server).full();
        replace();
      } else if ((status == ErrorCode.NO_NAMESPACE.code || status == ErrorCode.NOT_READY.code)
          && System.nanoTime() - op.startNanos < ns.client.config().requestTimeout().toNanos()) {
        // The server has not caught up with the control plane (it just started, or its view is old):
        // make it catch up, then send the copy once more, to the same place.
        Namespace n = ns;
        int s = server;
        long pg = page;
        int c = count;
        int sp = srcPage;
        boolean fr = fresh;
        int sl = slot;
        long st = stamp;
        recycle();
        n.client.call(s, Op.NS_ATTACH, n.record.id(), n.record.epoch(), null, r -> (Void) null)
            .whenComplete((v, e) -> {
              if (e == null) {
                n.sendPut(o, s, pg, c, sp, fr, sl, st);
                o.finish();
                return;
              }
              // Not caught up yet (the control plane is away): try again shortly; the next reply decides.
              n.client.eventLoopGroup().schedule(() -> {
                n.sendPut(o, s, pg, c, sp, fr, sl, st);
                o.finish();
              }, 100, java.util.concurrent.TimeUnit.MILLISECONDS);
            });
      } else {
        if (fresh) {
          clearSlot();
        }
        if (status == ErrorCode.STALE_EPOCH.code) {
          ns.fence();
        }
        VmdException e = ns.client.error(f, server);
        recycle();
        o.fail(e);
      }
    }

    /** The server filled up before its report said so: move this copy to another server. */
    private void replace() {
      replace(null);
    }

    /**
     * Moves this run's copy to another live server that holds no other copy of it: the server was full
     * ({@code why} null) or did not answer. With none, the write fails with why.
     */
    private void replace(VmdException why) {
      long bytes = (long) count * Pages.PAGE_SIZE;
      // Never back to the server that just failed.
      int s = ns.replacementFor(page, slot, server, bytes);
      if (s != LocationTable.NONE && !ns.inSet(s)) {
        ns.inServerSet(new int[] {s}, 1, () -> replace(why), e -> {
          WriteOp o = op;
          clearSlot();
          recycle();
          o.fail(e);
        });
        return;
      }
      if (s != LocationTable.NONE) {
        ns.client.server(s).placed(bytes);
        for (int k = 0; k < count; k++) {
          ns.locations.set(page + k, slot, s);
        }
        WriteOp o = op;
        ns.sendPut(o, s, page, count, srcPage, true, slot, stamp);
        recycle();
        o.finish();
        return;
      }
      if (why != null && System.nanoTime() - op.startNanos + RETRY_NANOS
          < ns.client.config().requestTimeout().toNanos()) {
        // Fewer live servers than replicas for now (one died, another is restarting): wait for one to
        // come back rather than fail the write, up to the request timeout.
        ns.client.eventLoopGroup().schedule(() -> replace(why), RETRY_NANOS, java.util.concurrent.TimeUnit.NANOSECONDS);
        return;
      }
      clearSlot();
      VmdException e = why != null ? new VmdException(ErrorCode.UNAVAILABLE, why.getMessage()
          + "; no other live server with room for this copy of pages " + page + ".." + (page + count - 1))
          : ns.noSpace(count, 0);
      WriteOp o = op;
      recycle();
      o.fail(e);
    }

    private void clearSlot() {
      for (int k = 0; k < count; k++) {
        if (ns.locations.get(page + k, slot) == server) {
          ns.locations.set(page + k, slot, LocationTable.NONE);
        }
      }
    }

    /**
     * No answer (connection lost, server down, timeout): the copy goes to another live server and the
     * write succeeds once every replica is held somewhere. The lost server's old copy, if it comes
     * back, is older than this write: the writer's rejoin deletes it, and a later attach tells it by
     * its lower stamp.
     */
    @Override
    void onFailure(VmdException e) {
      if (e.code() == ErrorCode.UNAVAILABLE) {
        replace(e);
        return;
      }
      if (fresh) {
        clearSlot();
      }
      WriteOp o = op;
      recycle();
      o.fail(e);
    }
  }

  // ---------------------------------------------------------------- read

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} when the future completes. Pages never written read as zeros.
   */
  public CompletableFuture<Void> read(long firstPage, int count, ByteBuf dst) {
    IoOp.Future f = new IoOp.Future();
    read(firstPage, count, dst, f);
    return f;
  }

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} before {@code done} runs. Pages never written read as zeros.
   */
  public void read(long firstPage, int count, ByteBuf dst, IoCallback done) {
    if (!inRange(firstPage, count)) {
      done.ioDone(outOfRange(firstPage, count));
      return;
    }
    int base = dst.writerIndex();
    dst.ensureWritable(count * Pages.PAGE_SIZE);
    ReadOp op = ReadOp.POOL.get();
    op.dst = dst;
    op.end = base + count * Pages.PAGE_SIZE;
    op.start(done);
    sendGets(op, firstPage, 0, count, base, LocationTable.NONE, 1);
    op.finish();
  }

  /**
   * Reads {@code count} pages without copying them: {@code done} gets a buffer of exactly
   * {@code count * 4096} readable bytes made of retained slices of the servers' replies (zeros where
   * nothing was written), which it must release. Worth it for large reads; a small read is cheaper
   * copied into a buffer of the caller's.
   */
  public void readShared(long firstPage, int count, ByteBufAllocator alloc, PagesCallback done) {
    if (!inRange(firstPage, count)) {
      done.pagesRead(null, outOfRange(firstPage, count));
      return;
    }
    ReadOp op = ReadOp.POOL.get();
    op.shared(count, alloc, done);
    op.start(null);
    sendGets(op, firstPage, 0, count, 0, LocationTable.NONE, 1);
    op.finish();
  }

  /**
   * The replica of {@code page} to read: the first on a server that is up, else the first at all (its
   * failure is then the answer); never {@code exclude}. {@link LocationTable#NONE} when no other copy.
   */
  private int readServer(long page, int exclude) {
    int fallback = LocationTable.NONE;
    for (int r = 0; r < locations.replicas(); r++) {
      int s = locations.get(page, r);
      if (s == LocationTable.NONE || s == exclude) {
        continue;
      }
      if (up(s)) {
        return s;
      }
      if (fallback == LocationTable.NONE) {
        fallback = s;
      }
    }
    return fallback;
  }

  /**
   * Sends one GET per run of pages [from, to) of a read (pages firstPage + i) that share the server
   * to read them from; zero-fills runs nobody stored. {@code exclude} is a server that just failed
   * these pages: another replica is asked, and a page with none left fails the read.
   */
  private void sendGets(ReadOp op, long firstPage, int from, int to, int base, int exclude, int attempt) {
    int i = from;
    while (i < to) {
      long page = firstPage + i;
      int j = i + 1;
      if (!locations.stored(page)) {
        Late l = late;
        if (l != null) {
          op.begin(); // balanced by the fail below
          op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " of namespace '" + name()
              + "' may be on servers " + l.pending.stream().map(client::describe).toList()
              + ", which have not answered since the attach: not reading it as zeros"));
          return;
        }
        while (j < to && !locations.stored(firstPage + j)) {
          j++;
        }
        op.zeros(i, j - i, base);
        i = j;
        continue;
      }
      int server = readServer(page, exclude);
      if (server == LocationTable.NONE) {
        op.begin(); // balanced by the fail below
        op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " of namespace '" + name()
            + "' has no copy left on a server that answers"));
        return;
      }
      while (j < to && j - i < Frame.MAX_PAGES && locations.stored(firstPage + j)
          && readServer(firstPage + j, exclude) == server) {
        j++;
      }
      ServerConnection conn = client.connection(server);
      long id = conn.nextId();
      ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
      Frame.writeHeader(frame, Op.GET, 0, 0, id, record.id(), record.epoch(), page, j - i, 0);
      op.begin();
      conn.send(id, frame, GetFrame.of(this, op, server, page, j - i, i, base, attempt));
      i = j;
    }
  }

  /** Receives the pages of a {@link #readShared} read. */
  @FunctionalInterface
  public interface PagesCallback {
    /** {@code pages} (owned by the callee) on success; null and the error otherwise. */
    void pagesRead(ByteBuf pages, VmdException error);
  }

  /**
   * A read: either copies pages into the caller's buffer, or (shared) keeps each run's pages as a
   * retained slice of the reply, indexed by the run's first page, and joins them at the end.
   */
  static final class ReadOp extends IoOp {
    static final Recycler<ReadOp> POOL = new Recycler<ReadOp>() {
      @Override
      protected ReadOp newObject(Handle<ReadOp> handle) {
        return new ReadOp(handle);
      }
    };

    private final Recycler.Handle<ReadOp> handle;
    ByteBuf dst;
    int end;
    private ByteBuf[] parts = new ByteBuf[0];
    private int count;
    private ByteBufAllocator alloc;
    private PagesCallback pagesDone;

    private ReadOp(Recycler.Handle<ReadOp> handle) {
      this.handle = handle;
    }

    void shared(int pages, ByteBufAllocator allocator, PagesCallback done) {
      if (parts.length < pages) {
        parts = new ByteBuf[pages];
      }
      count = pages;
      alloc = allocator;
      pagesDone = done;
    }

    boolean isShared() {
      return pagesDone != null;
    }

    /** Forgets what a failed frame left at {@code at} (its pages are read again elsewhere). */
    void dropPart(int at) {
      if (isShared() && parts[at] != null) {
        parts[at].release();
        parts[at] = null;
      }
    }

    /** Pages {@code [at, at + n)} of the read were never written. */
    void zeros(int at, int n, int base) {
      if (isShared()) {
        parts[at] = alloc.directBuffer(n * Pages.PAGE_SIZE).writeZero(n * Pages.PAGE_SIZE);
      } else {
        PageCopy.zero(dst, base + at * Pages.PAGE_SIZE, n * Pages.PAGE_SIZE);
      }
    }

    @Override
    void done(VmdException error, IoCallback cb) {
      if (!isShared()) {
        if (error == null) {
          dst.writerIndex(end);
        }
        dst = null;
        handle.recycle(this);
        cb.ioDone(error);
        return;
      }
      PagesCallback pcb = pagesDone;
      ByteBuf result = null;
      if (error == null) {
        CompositeByteBuf joined = alloc.compositeDirectBuffer(count);
        for (int i = 0; i < count; ) {
          ByteBuf part = parts[i];
          parts[i] = null;
          joined.addComponent(true, part);
          i += part.readableBytes() / Pages.PAGE_SIZE;
        }
        result = joined;
      } else {
        for (int i = 0; i < count; i++) {
          if (parts[i] != null) {
            parts[i].release();
            parts[i] = null;
          }
        }
      }
      pagesDone = null;
      alloc = null;
      handle.recycle(this);
      pcb.pagesRead(result, error);
    }
  }

  /** One GET frame in flight: a run of pages of one read from one server. */
  static final class GetFrame extends Pending {
    private static final Recycler<GetFrame> POOL = new Recycler<GetFrame>() {
      @Override
      protected GetFrame newObject(Handle<GetFrame> handle) {
        return new GetFrame(handle);
      }
    };

    private final Recycler.Handle<GetFrame> handle;
    private Namespace ns;
    private ReadOp op;
    private int server;
    private long page;
    private int count;
    /** The run's first page within the read. */
    private int at;
    private int dstIndex;
    /** How many servers have been asked for these pages, this one included. */
    private int attempt;

    private GetFrame(Recycler.Handle<GetFrame> handle) {
      this.handle = handle;
    }

    static GetFrame of(Namespace ns, ReadOp op, int server, long page, int count, int at, int base, int attempt) {
      GetFrame g = POOL.get();
      g.attempt = attempt;
      g.ns = ns;
      g.op = op;
      g.server = server;
      g.page = page;
      g.count = count;
      g.at = at;
      g.dstIndex = base + at * Pages.PAGE_SIZE;
      return g;
    }

    @Override
    void onReply(ByteBuf f) {
      VmdException e = Frame.status(f) != 0 ? ns.client.error(f, server) : takePages(f);
      if (e == null) {
        ReadOp o = op;
        ns = null;
        op = null;
        handle.recycle(this);
        o.finish();
      } else {
        // A server restarted empty, or one that lost the namespace: the other replicas may have it.
        retryOrFail(e);
      }
    }

    /** Asks the pages' other replicas (when any is left) instead of failing the read. */
    private void retryOrFail(VmdException e) {
      ReadOp o = op;
      Namespace n = ns;
      long first = page - at;
      int from = at;
      int to = at + count;
      int base = dstIndex - at * Pages.PAGE_SIZE;
      int failed = server;
      int next = attempt + 1;
      ns = null;
      op = null;
      handle.recycle(this);
      if (e.code() == ErrorCode.STALE_EPOCH || e.code() == ErrorCode.BAD_REQUEST || next > n.locations.replicas()) {
        o.fail(e);
        return;
      }
      o.dropPart(from);
      n.sendGets(o, first, from, to, base, failed, next);
      o.finish();
    }

    private VmdException takePages(ByteBuf f) {
      int bitmapAt = Frame.payloadIndex(f);
      int pageAt = bitmapAt + Frame.bitmapBytes(count);
      if (op.isShared() && Frame.payloadLength(f) == Frame.bitmapBytes(count) + count * Pages.PAGE_SIZE) {
        // Every page present: the run is one slice of the reply, no copy.
        op.parts[at] = f.retainedSlice(pageAt, count * Pages.PAGE_SIZE);
        return null;
      }
      ByteBuf dst;
      int dstAt;
      if (op.isShared()) {
        dst = op.alloc.directBuffer(count * Pages.PAGE_SIZE);
        dst.writerIndex(count * Pages.PAGE_SIZE);
        op.parts[at] = dst;
        dstAt = 0;
      } else {
        dst = op.dst;
        dstAt = dstIndex;
      }
      for (int i = 0; i < count; i++) {
        if (Frame.present(f, bitmapAt, i)) {
          PageCopy.copy(f, pageAt, dst, dstAt + i * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
          pageAt += Pages.PAGE_SIZE;
        } else if (ns.locations.stored(page + i)) {
          return new VmdException(ErrorCode.UNAVAILABLE, "page " + (page + i) + " of namespace '"
              + ns.name() + "' is missing on server " + ns.client.describe(server));
        } else {
          // Deleted while the read was in flight: it reads as never written.
          PageCopy.zero(dst, dstAt + i * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
        }
      }
      return null;
    }

    @Override
    void onFailure(VmdException e) {
      retryOrFail(e);
    }
  }

  // ---------------------------------------------------------------- delete

  /** Deletes the stored pages of the range on every server holding them; memory goes back. */
  public CompletableFuture<Void> delete(long firstPage, long count) {
    if (!writable()) {
      return CompletableFuture.failedFuture(writable ? fencedError() : readOnlyError());
    }
    if (!inRange(firstPage, count)) {
      return CompletableFuture.failedFuture(outOfRange(firstPage, count));
    }
    java.util.BitSet holds = new java.util.BitSet();
    for (long p = firstPage; p < firstPage + count; p++) {
      for (int r = 0; r < locations.replicas(); r++) {
        int s = locations.get(p, r);
        if (s != LocationTable.NONE) {
          holds.set(s);
        }
      }
      locations.clear(p);
    }
    IoOp op = new PlainOp();
    IoOp.Future result = new IoOp.Future();
    op.start(result);
    for (int s = holds.nextSetBit(0); s >= 0; s = holds.nextSetBit(s + 1)) {
      int server = s;
      for (long at = firstPage; at < firstPage + count; at += Integer.MAX_VALUE) {
        int n = (int) Math.min(Integer.MAX_VALUE, firstPage + count - at);
        ServerConnection conn = client.connection(s);
        long id = conn.nextId();
        ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
        Frame.writeHeader(frame, Op.DELETE, 0, 0, id, record.id(), record.epoch(), at, n, 0);
        op.begin();
        conn.send(id, frame, new Pending() {
          @Override
          void onReply(ByteBuf f) {
            if (Frame.status(f) != 0) {
              op.fail(client.error(f, server));
            } else {
              ServerState st = client.server(server);
              if (st != null) {
                st.placed(-f.getLong(Frame.payloadIndex(f)) * Pages.PAGE_SIZE);
              }
              op.finish();
            }
          }

          @Override
          void onFailure(VmdException e) {
            op.fail(e);
          }
        });
      }
    }
    op.finish();
    return result;
  }

  /** An operation with nothing to release, not pooled (deletes are rare). */
  private static final class PlainOp extends IoOp {
    @Override
    void done(VmdException error, IoCallback cb) {
      cb.ioDone(error);
    }
  }

  // ---------------------------------------------------------------- re-replication

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

  private boolean up(int slot) {
    ServerState s = client.server(slot);
    return s != null && s.up();
  }

  /** A copy that stays: on a server that is up and not draining. */
  private boolean keeps(int slot) {
    ServerState s = client.server(slot);
    return s != null && s.up() && s.status() != io.vmd.meta.ServerStatus.DRAINING;
  }

  private VmdException readOnlyError() {
    return new VmdException(ErrorCode.READ_ONLY, "namespace '" + name() + "' is attached read-only here"
        + " (another client or gateway owns it; a hand-off with vmd ns attach moves it)");
  }

  private VmdException fencedError() {
    return new VmdException(ErrorCode.STALE_EPOCH, "namespace '" + name() + "' was taken over by another owner; "
        + "this handle (epoch " + record.epoch() + ") writes no more");
  }

  /**
   * Gives every stored page of [first, first + count) that has a copy on a down server (or a missing
   * copy) a new copy on a live server holding none: reads it from a live replica, writes it there with
   * the stamp of the copy it read (so a later attach sees the copies as one version), and moves that
   * replica slot in the location table. Completes with the number of page copies made. The caller
   * orders it like a write (the gateway does), so no write to these pages runs meanwhile.
   */
  public CompletableFuture<Integer> rereplicate(long first, int count) {
    if (!writable()) {
      return CompletableFuture.failedFuture(writable ? fencedError() : readOnlyError());
    }
    if (!inRange(first, count)) {
      return CompletableFuture.failedFuture(outOfRange(first, count));
    }
    ByteBuf buf = io.netty.buffer.PooledByteBufAllocator.DEFAULT.directBuffer(count * Pages.PAGE_SIZE);
    buf.writerIndex(count * Pages.PAGE_SIZE);
    long[] stamps = new long[count];
    List<CompletableFuture<Void>> gets = new ArrayList<>();
    int i = 0;
    while (i < count) {
      if (!locations.stored(first + i)) {
        i++;
        continue;
      }
      int server = readServer(first + i, LocationTable.NONE);
      int j = i + 1;
      while (j < count && j - i < Frame.MAX_PAGES && locations.stored(first + j)
          && readServer(first + j, LocationTable.NONE) == server) {
        j++;
      }
      gets.add(readStamped(server, first + i, j - i, buf, i, stamps, 1));
      i = j;
    }
    CompletableFuture<Integer> result = new CompletableFuture<>();
    CompletableFuture.allOf(gets.toArray(new CompletableFuture<?>[0])).whenComplete((v, err) -> {
      if (err != null) {
        buf.release();
        result.completeExceptionally(VmdException.from(err));
        return;
      }
      int[] made = {0};
      IoOp.Future written = new IoOp.Future();
      WriteOp op = WriteOp.POOL.get();
      op.src = buf; // the op releases it when done
      op.startNanos = System.nanoTime();
      op.start(written);
      int k = 0;
      // Copies moved off a draining server: deleted from it once their new copies are written.
      List<long[]> drained = new ArrayList<>();
      while (k < count) {
        long page = first + k;
        int j = k + 1;
        if (!locations.stored(page)) {
          k = j;
          continue;
        }
        while (j < count && j - k < PLACEMENT_RUN && locations.stored(first + j)
            && locations.sameLocation(page, first + j) && stamps[j] == stamps[k]) {
          j++;
        }
        for (int r = 0; r < locations.replicas(); r++) {
          int s = locations.get(page, r);
          if (s != LocationTable.NONE && keeps(s)) {
            continue;
          }
          long bytes = (long) (j - k) * Pages.PAGE_SIZE;
          int target = replacementFor(page, r, LocationTable.NONE, bytes);
          if (target == LocationTable.NONE) {
            continue; // no live server free of a copy: stays under-replicated until one comes
          }
          if (!inSet(target)) {
            // Not yet a server of this namespace: ask the control plane, copy on a later pass.
            inServerSet(new int[] {target}, 1, () -> { }, e -> { });
            continue;
          }
          client.server(target).placed(bytes);
          if (s != LocationTable.NONE && up(s)) {
            drained.add(new long[] {s, page, j - k});
          }
          for (int x = k; x < j; x++) {
            locations.set(first + x, r, target);
          }
          made[0] += j - k;
          sendPut(op, target, page, j - k, k, true, r, stamps[k]);
        }
        k = j;
      }
      op.finish();
      written.whenComplete((x, e) -> {
        if (e != null) {
          result.completeExceptionally(e);
          return;
        }
        List<CompletableFuture<?>> deletes = new ArrayList<>();
        for (long[] d : drained) {
          deletes.add(client.call((int) d[0], Op.DELETE, record.id(), record.epoch(), null, f -> null, d[1], (int) d[2]));
        }
        CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0]))
            .whenComplete((done, de) -> result.complete(made[0]));
      });
    });
    return result;
  }

  /**
   * Reads pages [page, page + n) with their stamps from {@code server} into {@code buf} at page
   * {@code at} of it; a failure is asked of another replica while one is left.
   */
  private CompletableFuture<Void> readStamped(int server, long page, int n, ByteBuf buf, int at, long[] stamps,
      int attempt) {
    CompletableFuture<VmdException> got = client.call(server, Op.GET, Frame.FLAG_STAMPS, record.id(), record.epoch(),
        null, f -> takeStamped(f, server, page, n, buf, at, stamps), page, n);
    return got.handle((missing, err) -> {
      VmdException e = err != null ? VmdException.from(err) : missing;
      if (e == null) {
        return CompletableFuture.<Void>completedFuture(null);
      }
      int other = readServer(page, server);
      if (other == LocationTable.NONE || attempt >= locations.replicas() || e.code() == ErrorCode.STALE_EPOCH) {
        return CompletableFuture.<Void>failedFuture(e);
      }
      return readStamped(other, page, n, buf, at, stamps, attempt + 1);
    }).thenCompose(f -> f);
  }

  /** Copies a stamped GET reply's pages and stamps out; an error when a page the table places there is missing. */
  private VmdException takeStamped(ByteBuf f, int server, long page, int n, ByteBuf buf, int at, long[] stamps) {
    int bitmapAt = Frame.payloadIndex(f);
    for (int i = 0; i < n; i++) {
      if (!Frame.present(f, bitmapAt, i)) {
        return new VmdException(ErrorCode.UNAVAILABLE, "page " + (page + i) + " of namespace '" + name()
            + "' is missing on server " + client.describe(server));
      }
    }
    // Every page present: n pages, then n stamps.
    int pageAt = bitmapAt + Frame.bitmapBytes(n);
    int stampAt = pageAt + n * Pages.PAGE_SIZE;
    for (int i = 0; i < n; i++) {
      PageCopy.copy(f, pageAt + i * Pages.PAGE_SIZE, buf, (at + i) * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
      stamps[at + i] = f.getLong(stampAt + 8 * i);
    }
    return null;
  }

  /**
   * Brings the location table and {@code server} back in line for pages [first, first + count) after
   * the server rejoined, given the pages it holds ({@code held}, a bitmap over the namespace): a copy
   * the table places there that the server lacks (it restarted empty) is forgotten, so re-replication
   * restores it; a page the server holds that the table does not place there is stale (it was
   * rewritten elsewhere while the server was away) and is deleted from it. Ordered like a write.
   * Completes with the number of stale pages deleted.
   */
  public CompletableFuture<Long> reconcile(int server, long[] held, long first, long count) {
    PageList stale = new PageList();
    for (long p = first; p < first + count; p++) {
      boolean holds = (held[(int) (p >>> 6)] & (1L << p)) != 0;
      boolean placed = false;
      for (int r = 0; r < locations.replicas(); r++) {
        if (locations.get(p, r) == server) {
          placed = true;
          if (!holds) {
            locations.set(p, r, LocationTable.NONE);
          }
        }
      }
      if (holds && !placed) {
        stale.add(p);
      }
    }
    long deleted = stale.size();
    return deleteCopies(server, stale.sorted()).thenApply(v -> deleted);
  }

  /**
   * Deletes this namespace's copies of {@code pages} (ascending) from {@code server} alone, one
   * DELETE per run of adjacent pages: copies that are stale or surplus, which the location table
   * does not place there.
   */
  CompletableFuture<Void> deleteCopies(int server, long[] pages) {
    List<CompletableFuture<?>> deletes = new ArrayList<>();
    int i = 0;
    while (i < pages.length) {
      int j = i + 1;
      while (j < pages.length && pages[j] == pages[j - 1] + 1) {
        j++;
      }
      deletes.add(client.call(server, Op.DELETE, record.id(), record.epoch(), null, f -> null, pages[i], j - i));
      i = j;
    }
    return CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0]));
  }

  // ---------------------------------------------------------------- blocking conveniences

  public void writeSync(long firstPage, byte[] data) throws VmdException {
    if (data.length % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "data is not a whole number of pages");
    }
    VmdClient.await(write(firstPage, data.length / Pages.PAGE_SIZE, Unpooled.wrappedBuffer(data)));
  }

  public byte[] readSync(long firstPage, int count) throws VmdException {
    ByteBuf dst = Unpooled.buffer(count * Pages.PAGE_SIZE);
    VmdClient.await(read(firstPage, count, dst));
    return dst.array();
  }

  public void deleteSync(long firstPage, long count) throws VmdException {
    VmdClient.await(delete(firstPage, count));
  }
}
