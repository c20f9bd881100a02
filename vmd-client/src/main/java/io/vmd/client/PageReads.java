package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.Recycler;
import io.vmd.common.PageCopy;
import io.vmd.common.Slices;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The read path of a {@link Namespace}: GET frames to one live replica per run, asking another when
 * one fails, copying into the caller's buffer or handing out the replies' slices.
 */
final class PageReads {
  private static final Logger LOG = LoggerFactory.getLogger(PageReads.class);
  private final Namespace ns;

  PageReads(Namespace ns) {
    this.ns = ns;
  }

  // ---------------------------------------------------------------- read

  /**
   * Opens a sealed copy of {@code page} stamped {@code stamp} from {@code server} into {@code dst}; an
   * error, never the bytes, when it fails its tag or is older than the newest copy this client knows:
   * the read then asks another replica, and with none left fails.
   */
  VmdException open(long page, long stamp, ByteBuf src, int srcAt, ByteBuf dst, int dstAt, int server) {
    long newest = ns.newest.get(page);
    String why = stamp < newest ? "an older copy (stamp " + stamp + ", newest " + newest + ")"
        : ns.seal.open(page, stamp, src, srcAt, dst, dstAt) ? null : "a copy that fails its seal";
    if (why == null) {
      return null;
    }
    ns.client.sealFailures().increment();
    LOG.warn("namespace '{}': server {} returned {} of page {}", ns.name(),
        ns.client.describe(server), why, page);
    return new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " of namespace '" + ns.name() + "' from server "
        + ns.client.describe(server) + " is " + why + "; not passing it on");
  }

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} before {@code done} runs. Pages never written read as zeros.
   */
  public void read(long firstPage, int count, ByteBuf dst, IoCallback done) {
    if (!ns.inRange(firstPage, count)) {
      done.ioDone(ns.outOfRange(firstPage, count));
      return;
    }
    int base = dst.writerIndex();
    dst.ensureWritable(count * Pages.PAGE_SIZE);
    ReadOp op = ReadOp.POOL.get();
    op.dst = dst;
    op.end = base + count * Pages.PAGE_SIZE;
    op.start(done);
    sendGets(op, firstPage, 0, count, base, null);
    op.finish();
  }

  /**
   * Reads {@code count} pages without copying them: {@code done} gets a buffer of exactly
   * {@code count * 4096} readable bytes made of retained slices of the servers' replies (zeros where
   * nothing was written), which it must release. Worth it for large reads; a small read is cheaper
   * copied into a buffer of the caller's.
   */
  public void readShared(long firstPage, int count, ByteBufAllocator alloc, Namespace.PagesCallback done) {
    if (!ns.inRange(firstPage, count)) {
      done.pagesRead(null, ns.outOfRange(firstPage, count));
      return;
    }
    ReadOp op = ReadOp.POOL.get();
    op.shared(count, alloc, done);
    op.start(null);
    sendGets(op, firstPage, 0, count, 0, null);
    op.finish();
  }

  /**
   * The replica of {@code page} to read: the first on a server that is up, else the first at all (its
   * failure is then the answer); never one of the servers in {@code tried} (null: none), which already
   * failed it. {@link LocationTable#NONE} when no other copy.
   *
   * <p>"First" starts at a different replica for each block of {@link Namespace#PLACEMENT_RUN} pages:
   * placement lists the same server first for every run it places while the cluster stays the same, so
   * reading replica 0 always sent every read of a namespace to one server and left the other copies
   * idle (with R=2 under 1 MiB reads, one server did all the work). Every copy is current: a write
   * completes only when each replica has it.
   */
  int readServer(long page, int[] tried) {
    int fallback = LocationTable.NONE;
    int replicas = ns.locations.replicas();
    int first = replicas == 1 ? 0 : (int) ((page / Namespace.PLACEMENT_RUN) % replicas);
    for (int k = 0; k < replicas; k++) {
      int r = first + k < replicas ? first + k : first + k - replicas;
      int s = ns.locations.get(page, r);
      if (s == LocationTable.NONE || (tried != null && contains(tried, s))) {
        continue;
      }
      if (ns.up(s)) {
        return s;
      }
      if (fallback == LocationTable.NONE) {
        fallback = s;
      }
    }
    return fallback;
  }

  private static boolean contains(int[] a, int v) {
    for (int x : a) {
      if (x == v) {
        return true;
      }
    }
    return false;
  }

  /** {@code tried} and {@code server}: the servers a retry must not ask again (a failure path only). */
  static int[] plus(int[] tried, int server) {
    if (tried == null) {
      return new int[] {server};
    }
    int[] more = Arrays.copyOf(tried, tried.length + 1);
    more[tried.length] = server;
    return more;
  }

  /**
   * Pages [from, to) of a read that a read-only handle's table has no copy of: another owner writes
   * the namespace and may have placed them after this handle attached. Every server of the namespace's
   * set is asked (GET with stamps); each page takes the newest copy any holds. A page none holds is a
   * hole (zeros); a page only a server that did not answer could hold is an error, never zeros.
   */
  private void probe(ReadOp op, long firstPage, int from, int to, int base) {
    op.begin();
    // The owner names a server in the set before it places a page there: the set as of now covers
    // every page written before this read.
    ns.client.meta().viewAsync().whenComplete((v, e) -> {
      NamespaceMeta now = v == null ? null : v.namespace(ns.record.id());
      if (now == null) {
        op.fail(e != null ? VmdException.from(e) : new VmdException(ErrorCode.NO_NAMESPACE, "namespace '"
            + ns.name() + "' was deleted"));
        return;
      }
      ns.serverSet = now.servers();
      probe(op, firstPage, from, to, base, now.servers());
    });
  }

  private void probe(ReadOp op, long firstPage, int from, int to, int base, int[] set) {
    int n = to - from;
    long page = firstPage + from;
    int rec = ns.recordBytes;
    // The newest copy of each page as it came (a sealed record is opened once all have answered).
    ByteBuf copies = PooledByteBufAllocator.DEFAULT.directBuffer(n * rec);
    copies.writerIndex(n * rec);
    long[] stamps = new long[n];
    int[] sources = new int[n];
    Arrays.fill(stamps, -1);
    List<CompletableFuture<Void>> asks = new ArrayList<>();
    for (int slot : set) {
      ServerState s = ns.client.server(slot);
      if (s == null || s.removed()) {
        continue;
      }
      int flags = Frame.FLAG_STAMPS | (ns.seal == null ? 0 : Frame.FLAG_SEALED);
      asks.add(ns.client.calls().to(slot, Op.GET).flags(flags).namespace(ns.record.id(), ns.record.epoch())
          .pages(page, n).send(f -> {
        int bitmapAt = Frame.payloadIndex(f);
        int pageAt = bitmapAt + Frame.bitmapBytes(n);
        int stampAt = pageAt + Frame.presentCount(f, bitmapAt, n) * rec;
        synchronized (stamps) {
          for (int k = 0, idx = 0; k < n; k++) {
            if (!Frame.present(f, bitmapAt, k)) {
              continue;
            }
            long stamp = f.getLong(stampAt + 8 * idx);
            if (stamp > stamps[k]) {
              stamps[k] = stamp;
              sources[k] = slot;
              PageCopy.copy(f, pageAt + idx * rec, copies, k * rec, rec);
            }
            idx++;
          }
        }
        return (Void) null;
      }));
    }
    CompletableFuture.allOf(asks.toArray(new CompletableFuture<?>[0])).whenComplete((v, err) -> {
      ByteBuf pages = ns.seal == null ? copies : PooledByteBufAllocator.DEFAULT.directBuffer(n * Pages.PAGE_SIZE);
      pages.writerIndex(n * Pages.PAGE_SIZE);
      try {
        for (int k = 0; k < n; k++) {
          if (stamps[k] < 0 && err != null) {
            op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + (page + k) + " of namespace '" + ns.name()
                + "' is not known here and a server that may hold it did not answer: " + VmdException.from(err)
                .getMessage() + "; not reading it as zeros"));
            return;
          }
          if (stamps[k] < 0) {
            PageCopy.zero(pages, k * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
          } else if (ns.seal != null) {
            VmdException bad = open(page + k, stamps[k], copies, k * rec, pages, k * Pages.PAGE_SIZE, sources[k]);
            if (bad != null) {
              op.fail(bad);
              return;
            }
          }
        }
        op.filled(from, n, base, pages);
        op.finish();
      } finally {
        copies.release();
        if (pages != copies) {
          pages.release();
        }
      }
    });
  }

  /**
   * Sends one GET per run of pages [from, to) of a read (pages firstPage + i) that share the server
   * to read them from; zero-fills runs nobody stored. {@code exclude} is a server that just failed
   * these pages: another replica is asked, and a page with none left fails the read.
   */
  void sendGets(ReadOp op, long firstPage, int from, int to, int base, int[] tried) {
    int i = from;
    while (i < to) {
      long page = firstPage + i;
      int j = i + 1;
      if (!ns.locations.stored(page)) {
        Namespace.Late l = ns.late;
        if (l != null) {
          op.begin(); // balanced by the fail below
          op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " of namespace '" + ns.name()
              + "' may be on servers " + l.pending.stream().map(ns.client::describe).toList()
              + ", which have not answered since the attach: not reading it as zeros"));
          return;
        }
        while (j < to && j - i < Frame.MAX_PAGES && !ns.locations.stored(firstPage + j)) {
          j++;
        }
        if (ns.readOnly()) {
          // The owner may have written these pages since this handle attached: ask the servers.
          probe(op, firstPage, i, j, base);
        } else {
          op.zeros(i, j - i, base);
        }
        i = j;
        continue;
      }
      int server = readServer(page, tried);
      if (server == LocationTable.NONE) {
        op.begin(); // balanced by the fail below
        op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " of namespace '" + ns.name()
            + "' has no copy left on a server that answers"));
        return;
      }
      while (j < to && j - i < Frame.MAX_PAGES && ns.locations.stored(firstPage + j)
          && readServer(firstPage + j, tried) == server) {
        j++;
      }
      ServerConnection conn = ns.client.membership().connection(server);
      long id = conn.nextId();
      ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
      Frame.writeHeader(frame, Op.GET, ns.seal == null ? 0 : Frame.FLAG_SEALED | Frame.FLAG_STAMPS, 0, id,
          ns.record.id(), ns.record.epoch(), page, j - i, 0);
      op.begin();
      conn.send(id, frame, GetFrame.of(ns, op, server, page, j - i, i, base, tried));
      i = j;
    }
  }

  /**
   * A read: either copies pages into the caller's buffer, or (shared) keeps, for each run, the
   * buffer holding its pages (a reply, retained) and where in it they start, indexed by the run's
   * first page, and joins slices of them at the end.
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
    /** Where in {@code parts[at]} the run starting at page {@code at} starts, and its pages. */
    private int[] partIndex = new int[0];
    private int[] partPages = new int[0];
    private int count;
    private ByteBufAllocator alloc;
    private Namespace.PagesCallback pagesDone;

    private ReadOp(Recycler.Handle<ReadOp> handle) {
      this.handle = handle;
    }

    void shared(int pages, ByteBufAllocator allocator, Namespace.PagesCallback done) {
      if (parts.length < pages) {
        parts = new ByteBuf[pages];
        partIndex = new int[pages];
        partPages = new int[pages];
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

    /** Pages {@code [at, at + n)} of the read are {@code src}'s bytes (the caller keeps {@code src}). */
    void filled(int at, int n, int base, ByteBuf src) {
      if (isShared()) {
        ByteBuf part = alloc.directBuffer(n * Pages.PAGE_SIZE);
        part.writerIndex(n * Pages.PAGE_SIZE);
        PageCopy.copy(src, 0, part, 0, n * Pages.PAGE_SIZE);
        part(at, n, part, 0);
      } else {
        PageCopy.copy(src, 0, dst, base + at * Pages.PAGE_SIZE, n * Pages.PAGE_SIZE);
      }
    }

    /**
     * Pages {@code [at, at + n)} of the read are {@code buf}'s bytes from {@code index}; the read owns
     * the reference to {@code buf}.
     */
    void part(int at, int n, ByteBuf buf, int index) {
      parts[at] = buf;
      partIndex[at] = index;
      partPages[at] = n;
    }

    /** Pages {@code [at, at + n)} of the read were never written. */
    void zeros(int at, int n, int base) {
      if (isShared()) {
        part(at, n, alloc.directBuffer(n * Pages.PAGE_SIZE).writeZero(n * Pages.PAGE_SIZE), 0);
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
      Namespace.PagesCallback pcb = pagesDone;
      ByteBuf result = null;
      if (error == null) {
        // A run gathered from several socket reads adds a slice of each, so that every part keeps a
        // memory address (Slices); never consolidated (that would copy).
        CompositeByteBuf joined = alloc.compositeDirectBuffer(Integer.MAX_VALUE);
        for (int i = 0; i < count; ) {
          ByteBuf part = parts[i];
          parts[i] = null;
          int pages = partPages[i];
          Slices.addSlices(joined, part, partIndex[i], pages * Pages.PAGE_SIZE);
          part.release();
          i += pages;
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
    /** Servers that already failed these pages (null: none): a retry asks each replica once. */
    private int[] tried;

    private GetFrame(Recycler.Handle<GetFrame> handle) {
      this.handle = handle;
    }

    static GetFrame of(Namespace ns, ReadOp op, int server, long page, int count, int at, int base, int[] tried) {
      GetFrame g = POOL.get();
      g.tried = tried;
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
      VmdException e = Frame.status(f) != 0 ? ns.client.calls().error(f, server) : takePages(f);
      if (e == null) {
        ReadOp o = op;
        ns = null;
        op = null;
        tried = null;
        retire();
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
      int[] failed = plus(tried, server);
      ns = null;
      op = null;
      tried = null;
      retire();
      handle.recycle(this);
      if (e.code() == ErrorCode.STALE_EPOCH || e.code() == ErrorCode.BAD_REQUEST || failed.length >= n.locations.replicas()) {
        o.fail(e);
        return;
      }
      o.dropPart(from);
      // Every page of the run goes to a replica not yet tried; one with none left fails the read.
      n.reads.sendGets(o, first, from, to, base, failed);
      o.finish();
    }

    private VmdException takePages(ByteBuf f) {
      int bitmapAt = Frame.payloadIndex(f);
      int pageAt = bitmapAt + Frame.bitmapBytes(count);
      if (ns.seal != null && (Frame.flags(f) & Frame.FLAG_SEALED) == 0) {
        return new VmdException(ErrorCode.UNAVAILABLE, "server " + ns.client.describe(server)
            + " answered a sealed read with plain pages");
      }
      if (ns.seal == null && op.isShared()
          && Frame.payloadLength(f) == Frame.bitmapBytes(count) + count * Pages.PAGE_SIZE) {
        // Every page present: the run is the reply's own bytes, kept until the read is joined; no copy.
        op.part(at, count, f.retain(), pageAt);
        return null;
      }
      ByteBuf dst;
      int dstAt;
      if (op.isShared()) {
        dst = op.alloc.directBuffer(count * Pages.PAGE_SIZE);
        dst.writerIndex(count * Pages.PAGE_SIZE);
        op.part(at, count, dst, 0);
        dstAt = 0;
      } else {
        dst = op.dst;
        dstAt = dstIndex;
      }
      int stampAt = ns.seal == null ? 0 : pageAt + Frame.presentCount(f, bitmapAt, count) * PageSeal.RECORD;
      for (int i = 0; i < count; i++) {
        if (Frame.present(f, bitmapAt, i)) {
          if (ns.seal == null) {
            PageCopy.copy(f, pageAt, dst, dstAt + i * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            pageAt += Pages.PAGE_SIZE;
            continue;
          }
          long stamp = f.getLong(stampAt);
          stampAt += 8;
          VmdException bad = ns.reads.open(page + i, stamp, f, pageAt, dst, dstAt + i * Pages.PAGE_SIZE, server);
          if (bad != null) {
            return bad;
          }
          pageAt += PageSeal.RECORD;
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
}
