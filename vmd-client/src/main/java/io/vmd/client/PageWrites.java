package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.Recycler;
import io.vmd.common.Slices;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * The write path of a {@link Namespace}: placement of new pages, PUT frames to every replica, and
 * moving a copy when its server is full or does not answer.
 */
final class PageWrites {
  private final Namespace ns;

  PageWrites(Namespace ns) {
    this.ns = ns;
  }

  // ---------------------------------------------------------------- write

  /**
   * Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved) and calls
   * {@code done} once every replica holds them. {@code src} must stay untouched until then.
   */
  public void write(long firstPage, int count, ByteBuf src, IoCallback done) {
    if (!ns.writable) {
      done.ioDone(ns.readOnlyError());
      return;
    }
    if (ns.fenced) {
      done.ioDone(ns.fencedError());
      return;
    }
    if (!ns.inRange(firstPage, count)) {
      done.ioDone(ns.outOfRange(firstPage, count));
      return;
    }
    if (src.readableBytes() < (long) count * Pages.PAGE_SIZE) {
      done.ioDone(new VmdException(ErrorCode.BAD_REQUEST,
          src.readableBytes() + " bytes given for " + count + " pages"));
      return;
    }
    Namespace.Late l = ns.late;
    if (l != null) {
      l.copies.written(firstPage, count);
    }
    long stamp = ns.nextStamp.getAndIncrement();
    if (stamp >>> Frame.STAMP_SEQUENCE_BITS != ns.record.epoch()) {
      // A writer's stamps stay within its epoch: past 2^40 writes it must re-attach (a new epoch).
      done.ioDone(new VmdException(ErrorCode.BAD_REQUEST, "namespace '" + ns.name() + "' has used every stamp of "
          + "epoch " + ns.record.epoch() + "; attach it again to write on"));
      return;
    }
    WriteOp op = WriteOp.POOL.get();
    op.src = ns.seal == null ? src.retain() : sealed(firstPage, count, src, stamp);
    op.startNanos = System.nanoTime();
    op.stamp = stamp;
    op.newest = ns.newest;
    op.firstPage = firstPage;
    op.count = count;
    op.start(done);
    int i = 0;
    while (i < count) {
      long page = firstPage + i;
      int j = i + 1;
      if (ns.locations.stored(page)) {
        while (j < count && j - i < Frame.MAX_PAGES && ns.locations.sameLocation(page, firstPage + j)) {
          j++;
        }
        for (int r = 0; r < ns.locations.replicas(); r++) {
          int server = ns.locations.get(page, r);
          if (server != LocationTable.NONE) {
            sendPut(op, server, page, j - i, i, false, r, op.stamp);
          }
        }
      } else {
        while (j < count && j - i < Namespace.PLACEMENT_RUN && !ns.locations.stored(firstPage + j)) {
          j++;
        }
        placeAndPut(op, page, j - i, i);
      }
      i = j;
    }
    op.finish();
  }

  /** The write's pages sealed, once for every replica and retry (a nonce is never used twice). */
  private ByteBuf sealed(long firstPage, int count, ByteBuf src, long stamp) {
    ByteBuf out = PooledByteBufAllocator.DEFAULT.directBuffer(count * PageSeal.RECORD);
    for (int i = 0; i < count; i++) {
      ns.seal.seal(firstPage + i, stamp, src, src.readerIndex() + i * Pages.PAGE_SIZE, out, i * PageSeal.RECORD);
    }
    return out.writerIndex(count * PageSeal.RECORD);
  }

  void placeAndPut(WriteOp op, long page, int count, int srcPage) {
    int replicas = ns.locations.replicas();
    int[] chosen = ns.client.placementScratch(replicas);
    long bytes = (long) count * Pages.PAGE_SIZE;
    int n = ns.client.placement().choose(ns.client.membership().members(), replicas, bytes, chosen);
    if (n == replicas) {
      for (int r = 0; r < n; r++) {
        if (!ns.inSet(chosen[r])) {
          // A server new to this namespace: the control plane hears of it first, then the pages go.
          op.begin();
          ns.inServerSet(Arrays.copyOf(chosen, n), n, () -> {
            placeAndPut(op, page, count, srcPage);
            op.finish();
          }, op::fail);
          return;
        }
      }
    }
    if (n < replicas) {
      boolean someDown = false;
      for (ServerState s : ns.client.membership().members()) {
        someDown |= !s.up();
      }
      if (someDown && System.nanoTime() - op.startNanos + PutFrame.RETRY_NANOS
          < ns.client.config().requestTimeout().toNanos()) {
        // Too few live servers for the replicas right now (one may be restarting): try again shortly
        // rather than fail, up to the request timeout. A full cluster (all up) is NO_SPACE at once.
        op.begin();
        ns.client.eventLoopGroup().schedule(() -> {
          placeAndPut(op, page, count, srcPage);
          op.finish();
        }, PutFrame.RETRY_NANOS, TimeUnit.NANOSECONDS);
        return;
      }
      op.fail(someDown ? new VmdException(ErrorCode.UNAVAILABLE, "only " + n + " live servers with room for "
          + replicas + " replicas of pages " + page + ".." + (page + count - 1) + " of namespace '" + ns.name() + "'")
          : noSpace(count, n));
      return;
    }
    for (int r = 0; r < n; r++) {
      ns.client.server(chosen[r]).placed(bytes);
      for (int k = 0; k < count; k++) {
        ns.locations.set(page + k, r, chosen[r]);
      }
    }
    // From the table, not the scratch array: a send that fails at once may run callbacks that write again.
    for (int r = 0; r < n; r++) {
      sendPut(op, ns.locations.get(page, r), page, count, srcPage, true, r, op.stamp);
    }
  }

  /**
   * A live server with room for {@code bytes} to hold replica {@code slot} of the run starting at
   * {@code page}: one holding no other copy of it and not {@code exclude}; {@link LocationTable#NONE}
   * when there is none. The placement policy's order decides among them.
   */
  int replacementFor(long page, int slot, int exclude, long bytes) {
    ServerState[] servers = ns.client.membership().members();
    int[] candidates = new int[servers.length];
    int n = ns.client.placement().choose(servers, servers.length, bytes, candidates);
    // Servers already in the set first: a replacement there needs no word to the control plane.
    for (int c = 0; c < n; c++) {
      int s = candidates[c];
      boolean holdsOther = s == exclude;
      for (int r = 0; r < ns.locations.replicas(); r++) {
        holdsOther |= r != slot && ns.locations.get(page, r) == s;
      }
      if (!holdsOther && ns.inSet(s)) {
        return s;
      }
    }
    for (int c = 0; c < n; c++) {
      int s = candidates[c];
      boolean holdsOther = s == exclude;
      for (int r = 0; r < ns.locations.replicas(); r++) {
        holdsOther |= r != slot && ns.locations.get(page, r) == s;
      }
      if (!holdsOther) {
        return s;
      }
    }
    return LocationTable.NONE;
  }

  VmdException noSpace(int count, int found) {
    return new VmdException(ErrorCode.NO_SPACE, "no room in the cluster for " + count
        + " new pages of namespace '" + ns.name() + "' with " + ns.locations.replicas() + " replicas ("
        + found + " servers have room)");
  }

  void sendPut(WriteOp op, int server, long page, int count, int srcPage, boolean fresh, int slot, long stamp) {
    ServerConnection conn = ns.client.membership().connection(server);
    long id = conn.nextId();
    ByteBuf header = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
    Frame.writeHeader(header, Op.PUT, ns.seal == null ? 0 : Frame.FLAG_SEALED, 0, id, ns.record.id(),
        ns.record.epoch(), page, count, stamp, count * ns.recordBytes);
    ByteBuf payload = Slices.retainedSlice(op.src, op.src.readerIndex() + srcPage * ns.recordBytes, count * ns.recordBytes);
    op.begin();
    conn.send(id, header, payload, PutFrame.of(ns, op, server, page, count, srcPage, fresh, slot, stamp));
  }

  static final class WriteOp extends IoOp {
    static final Recycler<WriteOp> POOL = new Recycler<WriteOp>() {
      @Override
      protected WriteOp newObject(Handle<WriteOp> handle) {
        return new WriteOp(handle);
      }
    };

    private final Recycler.Handle<WriteOp> handle;
    /** The pages as they go out: the caller's, or sealed records of them. */
    ByteBuf src;
    /** When the write began: a copy waiting for a live server may wait until the request timeout. */
    long startNanos;
    long stamp;
    /** A sealed namespace's newest stamps, moved on when the write completes (null: nothing to note). */
    StampTable newest;
    long firstPage;
    int count;

    private WriteOp(Recycler.Handle<WriteOp> handle) {
      this.handle = handle;
    }

    @Override
    void done(VmdException error, IoCallback cb) {
      if (error == null && newest != null) {
        newest.advance(firstPage, count, stamp);
      }
      newest = null;
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
      retire();
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
        n.client.calls().to(s, Op.NS_ATTACH).namespace(n.record.id(), n.record.epoch()).send(r -> (Void) null)
            .whenComplete((v, e) -> {
              if (e == null) {
                n.writes.sendPut(o, s, pg, c, sp, fr, sl, st);
                o.finish();
                return;
              }
              // Not caught up yet (the control plane is away): try again shortly; the next reply decides.
              n.client.eventLoopGroup().schedule(() -> {
                n.writes.sendPut(o, s, pg, c, sp, fr, sl, st);
                o.finish();
              }, 100, TimeUnit.MILLISECONDS);
            });
      } else {
        if (fresh) {
          clearSlot();
        }
        if (status == ErrorCode.STALE_EPOCH.code) {
          ns.fence();
        }
        VmdException e = ns.client.calls().error(f, server);
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
      int s = ns.writes.replacementFor(page, slot, server, bytes);
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
        ns.writes.sendPut(o, s, page, count, srcPage, true, slot, stamp);
        recycle();
        o.finish();
        return;
      }
      if (why != null && System.nanoTime() - op.startNanos + RETRY_NANOS
          < ns.client.config().requestTimeout().toNanos()) {
        // Fewer live servers than replicas for now (one died, another is restarting): wait for one to
        // come back rather than fail the write, up to the request timeout.
        ns.client.eventLoopGroup().schedule(() -> replace(why), RETRY_NANOS, TimeUnit.NANOSECONDS);
        return;
      }
      clearSlot();
      VmdException e = why != null ? new VmdException(ErrorCode.UNAVAILABLE, why.getMessage()
          + "; no other live server with room for this copy of pages " + page + ".." + (page + count - 1))
          : ns.writes.noSpace(count, 0);
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
}
