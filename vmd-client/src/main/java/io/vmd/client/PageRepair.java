package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vmd.common.PageCopy;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * What changes where pages live besides writes: deletes, new copies for pages that lost one
 * (re-replication, drain), and bringing a server that came back in line.
 */
final class PageRepair {
  private final Namespace ns;

  PageRepair(Namespace ns) {
    this.ns = ns;
  }

  // ---------------------------------------------------------------- delete

  /** Deletes the stored pages of the range on every server holding them; memory goes back. */
  public CompletableFuture<Void> delete(long firstPage, long count) {
    if (!ns.writable()) {
      return CompletableFuture.failedFuture(ns.writable ? ns.fencedError() : ns.readOnlyError());
    }
    if (!ns.inRange(firstPage, count)) {
      return CompletableFuture.failedFuture(ns.outOfRange(firstPage, count));
    }
    BitSet holds = new BitSet();
    for (long p = firstPage; p < firstPage + count; p++) {
      for (int r = 0; r < ns.locations.replicas(); r++) {
        int s = ns.locations.get(p, r);
        if (s != LocationTable.NONE) {
          holds.set(s);
        }
      }
      ns.locations.clear(p);
    }
    IoOp op = new PlainOp();
    IoOp.Future result = new IoOp.Future();
    op.start(result);
    for (int s = holds.nextSetBit(0); s >= 0; s = holds.nextSetBit(s + 1)) {
      int server = s;
      for (long at = firstPage; at < firstPage + count; at += Integer.MAX_VALUE) {
        int n = (int) Math.min(Integer.MAX_VALUE, firstPage + count - at);
        ServerConnection conn = ns.client.membership().connection(s);
        long id = conn.nextId();
        ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
        Frame.writeHeader(frame, Op.DELETE, 0, 0, id, ns.record.id(), ns.record.epoch(), at, n, 0);
        op.begin();
        conn.send(id, frame, new Pending() {
          @Override
          void onReply(ByteBuf f) {
            if (Frame.status(f) != 0) {
              op.fail(ns.client.calls().error(f, server));
            } else {
              ServerState st = ns.client.server(server);
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

  /**
   * Gives every stored page of [first, first + count) that has a copy on a down server (or a missing
   * copy) a new copy on a live server holding none: reads it from a live replica, writes it there with
   * the stamp of the copy it read (so a later attach sees the copies as one version), and moves that
   * replica slot in the location table. Completes with the number of page copies made. The caller
   * orders it like a write (the gateway does), so no write to these pages runs meanwhile.
   */
  public CompletableFuture<Integer> rereplicate(long first, int count) {
    return rereplicate(first, count, true);
  }

  /**
   * {@code mayJoin}: a target not yet in the namespace's server set is added, and the range copied
   * again once it is (only once: the second run leaves such a target to a later call). Without the
   * second run a caller that repairs to the end at once (a drain) would stop at a pass that copied
   * nothing, and its next attach would take the still-empty server out of the set again.
   */
  private CompletableFuture<Integer> rereplicate(long first, int count, boolean mayJoin) {
    if (!ns.writable()) {
      return CompletableFuture.failedFuture(ns.writable ? ns.fencedError() : ns.readOnlyError());
    }
    if (!ns.inRange(first, count)) {
      return CompletableFuture.failedFuture(ns.outOfRange(first, count));
    }
    // Pages as they are stored: sealed records are copied as they are, never opened for good.
    ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(count * ns.recordBytes);
    buf.writerIndex(count * ns.recordBytes);
    long[] stamps = new long[count];
    List<CompletableFuture<Void>> gets = new ArrayList<>();
    int i = 0;
    while (i < count) {
      if (!ns.locations.stored(first + i)) {
        i++;
        continue;
      }
      int server = ns.reads.readServer(first + i, null);
      int j = i + 1;
      while (j < count && j - i < Frame.MAX_PAGES && ns.locations.stored(first + j)
          && ns.reads.readServer(first + j, null) == server) {
        j++;
      }
      gets.add(readStamped(server, first + i, j - i, buf, i, stamps, null));
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
      PageWrites.WriteOp op = PageWrites.WriteOp.POOL.get();
      op.src = buf; // the op releases it when done
      op.startNanos = System.nanoTime();
      op.start(written);
      int k = 0;
      // Copies moved off a draining server: deleted from it once their new copies are written.
      List<long[]> drained = new ArrayList<>();
      BitSet joining = new BitSet();
      while (k < count) {
        long page = first + k;
        int j = k + 1;
        if (!ns.locations.stored(page)) {
          k = j;
          continue;
        }
        while (j < count && j - k < Namespace.PLACEMENT_RUN && ns.locations.stored(first + j)
            && ns.locations.sameLocation(page, first + j) && stamps[j] == stamps[k]) {
          j++;
        }
        for (int r = 0; r < ns.locations.replicas(); r++) {
          int s = ns.locations.get(page, r);
          if (s != LocationTable.NONE && ns.keeps(s)) {
            continue;
          }
          long bytes = (long) (j - k) * Pages.PAGE_SIZE;
          int target = ns.writes.replacementFor(page, r, LocationTable.NONE, bytes);
          if (target == LocationTable.NONE) {
            continue; // no live server free of a copy: stays under-replicated until one comes
          }
          if (!ns.inSet(target)) {
            // Not yet a server of this namespace: the control plane adds it first (below).
            joining.set(target);
            continue;
          }
          ns.client.server(target).placed(bytes);
          if (s != LocationTable.NONE && ns.up(s)) {
            drained.add(new long[] {s, page, j - k});
          }
          for (int x = k; x < j; x++) {
            ns.locations.set(first + x, r, target);
          }
          made[0] += j - k;
          ns.writes.sendPut(op, target, page, j - k, k, true, r, stamps[k]);
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
          deletes.add(ns.client.calls().to((int) d[0], Op.DELETE).namespace(ns.record.id(), ns.record.epoch())
              .pages(d[1], (int) d[2]).send(f -> null));
        }
        CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0])).whenComplete((done, de) -> {
          if (joining.isEmpty() || !mayJoin) {
            result.complete(made[0]);
            return;
          }
          int[] slots = joining.stream().toArray();
          ns.inServerSet(slots, slots.length, () -> rereplicate(first, count, false).whenComplete((more, again) ->
              result.complete(made[0] + (again == null ? more : 0))), joinFailed -> result.complete(made[0]));
        });
      });
    });
    return result;
  }

  /**
   * Reads pages [page, page + n) with their stamps from {@code server} into {@code buf} at page
   * {@code at} of it; a failure is asked of another replica while one is left.
   */
  private CompletableFuture<Void> readStamped(int server, long page, int n, ByteBuf buf, int at, long[] stamps,
      int[] tried) {
    int flags = Frame.FLAG_STAMPS | (ns.seal == null ? 0 : Frame.FLAG_SEALED);
    CompletableFuture<VmdException> got = ns.client.calls().to(server, Op.GET).flags(flags)
        .namespace(ns.record.id(), ns.record.epoch()).pages(page, n).send(f -> takeStamped(f, server, page, n, buf, at, stamps));
    return got.handle((missing, err) -> {
      VmdException e = err != null ? VmdException.from(err) : missing;
      if (e == null) {
        return CompletableFuture.<Void>completedFuture(null);
      }
      int[] failed = PageReads.plus(tried, server);
      int other = ns.reads.readServer(page, failed);
      if (other == LocationTable.NONE || e.code() == ErrorCode.STALE_EPOCH) {
        return CompletableFuture.<Void>failedFuture(e);
      }
      return readStamped(other, page, n, buf, at, stamps, failed);
    }).thenCompose(f -> f);
  }

  /** Copies a stamped GET reply's pages and stamps out; an error when a page the table places there is missing. */
  private VmdException takeStamped(ByteBuf f, int server, long page, int n, ByteBuf buf, int at, long[] stamps) {
    int bitmapAt = Frame.payloadIndex(f);
    for (int i = 0; i < n; i++) {
      if (!Frame.present(f, bitmapAt, i)) {
        return new VmdException(ErrorCode.UNAVAILABLE, "page " + (page + i) + " of namespace '" + ns.name()
            + "' is missing on server " + ns.client.describe(server));
      }
    }
    // Every page present: n pages (or sealed records), then n stamps.
    int rec = ns.recordBytes;
    int pageAt = bitmapAt + Frame.bitmapBytes(n);
    int stampAt = pageAt + n * rec;
    ByteBuf check = ns.seal == null ? null : PooledByteBufAllocator.DEFAULT.directBuffer(Pages.PAGE_SIZE);
    try {
      for (int i = 0; i < n; i++) {
        long stamp = f.getLong(stampAt + 8 * i);
        if (check != null) {
          // A copy that fails its seal is not copied on: another replica is asked.
          VmdException bad = ns.reads.open(page + i, stamp, f, pageAt + i * rec, check, 0, server);
          if (bad != null) {
            return bad;
          }
        }
        PageCopy.copy(f, pageAt + i * rec, buf, (at + i) * rec, rec);
        stamps[at + i] = stamp;
      }
      return null;
    } finally {
      if (check != null) {
        check.release();
      }
    }
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
      for (int r = 0; r < ns.locations.replicas(); r++) {
        if (ns.locations.get(p, r) == server) {
          placed = true;
          if (!holds) {
            ns.locations.set(p, r, LocationTable.NONE);
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
      deletes.add(ns.client.calls().to(server, Op.DELETE).namespace(ns.record.id(), ns.record.epoch())
          .pages(pages[i], j - i).send(f -> null));
      i = j;
    }
    return CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0]));
  }
}
