package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.vmd.client.LocationTable;
import io.vmd.client.Namespace;
import io.vmd.client.VmdException;
import io.vmd.common.FlushBatch;
import io.vmd.protocol.Pages;
import io.vmd.protocol.ProtocolException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one NBD connection. Requests run concurrently and are answered as they
 * finish, out of order; requests on overlapping pages of the export are ordered by the export's
 * {@link PageOrdering}. Errors are replies and the connection lives on; only a protocol violation
 * closes it.
 *
 * <p>Memory is budgeted in bytes, not requests: what a request will hold (its payload, or the reply a
 * READ will need) is charged to this connection and to the gateway's {@link GatewayBudget} when it is
 * admitted and released when its reply has left for the socket. A READ that does not fit waits here
 * (a few bytes of header) and the connection stops reading until half its budget is free, so a client
 * that never reads its replies holds at most its budget. Requests longer than one {@link #PIECE} are
 * served a piece at a time: a long READ as several reply chunks (or one simple reply written piece by
 * piece), a long WRITE piece by piece as its payload arrives. All bookkeeping runs on the connection's
 * event loop; completions from the cluster come back to it.
 */
final class NbdSession extends ChannelInboundHandlerAdapter {
  private static final Logger LOG = LoggerFactory.getLogger(NbdSession.class);
  /** Bytes of a long READ or WRITE handled at a time (a power of two, a multiple of the page). */
  static final int PIECE = 4 << 20;
  /** Charged for a reply beside its data: its header and at most a 1 KiB error message. */
  static final int REPLY_COST = 2048;
  /** The most one request (or piece) asks of a budget before it may start. */
  static final long MAX_COST = PIECE + REPLY_COST;
  /** Stop reading requests above this many in flight, resume below half of it. */
  private static final int MAX_IN_FLIGHT = 512;
  private static final int MAX_EXTENTS = 65536;
  /**
   * Reads of at least this many pages are answered with the servers' reply bytes themselves (no
   * copy); smaller ones are copied into one buffer, which costs less than joining slices.
   */
  private static final int SHARED_READ_PAGES = 16;

  private final Export export;
  /** The attachment this connection reads and writes through (see {@link #dispatch} for when it changes). */
  private Namespace ns;
  private final boolean structured;
  private final boolean allocationContext;
  private final GatewayBudget budget;
  private final long limit;
  private final long resumeAt;
  private Channel channel;
  private EventLoop loop;
  /** Requests received and not yet answered (their replies not yet written), waiting ones included. */
  private int inFlight;
  /** Bytes this connection holds of its budget (and of the gateway's). */
  private long charged;
  /** Requests that did not fit the budgets when they came, in arrival order. */
  private final ArrayDeque<NbdRequest> waiting = new ArrayDeque<>();
  private boolean paused;
  private boolean awaitingBudget;
  private boolean disconnecting;
  private boolean closed;
  /** The WRITE whose payload pieces are arriving, or null. */
  private NbdRequest streaming;
  /**
   * Simple replies only: a long READ whose reply is being written piece by piece owns the output;
   * other replies wait in {@link #held} (reply, then its request) until it is done.
   */
  private NbdRequest outputOwner;
  private ArrayDeque<Object> held;
  /** Simple replies only: long READs whose first piece is read and waits for the output. */
  private ArrayDeque<NbdRequest> deferred;
  /** Whether this read burst opened the loop's flush batch (closed in channelReadComplete). */
  private boolean batching;

  NbdSession(Export export, boolean structured, boolean allocationContext, GatewayBudget budget) {
    this.export = export;
    this.ns = export.namespace;
    this.structured = structured;
    this.allocationContext = allocationContext;
    this.budget = budget;
    this.limit = budget.perConnection();
    this.resumeAt = limit / 2;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    channel = ctx.channel();
    loop = channel.eventLoop();
  }

  long charged() {
    return charged;
  }

  String describe() {
    return "charged=" + charged + " inFlight=" + inFlight + " waiting=" + waiting.size() + " paused=" + paused
        + " closed=" + closed + " disconnecting=" + disconnecting;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    NbdRequest r = (NbdRequest) msg;
    if (r.type == NbdRequest.PIECE) {
      piece(r);
      return;
    }
    if (disconnecting || closed) {
      // The protocol: nothing after NBD_CMD_DISC is served.
      drop(r);
      return;
    }
    if (!batching) {
      // The burst's requests go out to the servers (and its quick replies back) with one flush each.
      batching = true;
      FlushBatch.current().open();
    }
    if (r.type == Nbd.CMD_DISC) {
      disconnecting = true;
      r.recycle();
      updateReading();
      closeIfDone();
      return;
    }
    inFlight++;
    r.session = this;
    if (r.type == Nbd.CMD_WRITE) {
      // Its payload is here already: holding it back frees nothing. Charge it and let it run.
      r.charge = (r.payload == null ? 0 : r.payload.readableBytes()) + REPLY_COST;
      charge(r.charge);
      dispatchGuarded(r);
    } else {
      long cost = cost(r);
      if (waiting.isEmpty() && admits(r, cost)) {
        r.charge = cost;
        charge(cost);
        dispatchGuarded(r);
      } else {
        waiting.add(r);
      }
    }
    updateReading();
  }

  // ---------------------------------------------------------------- budgets

  /** What {@code r} (or the next piece of a long READ) will hold until its reply is written. */
  private long cost(NbdRequest r) {
    switch (r.type) {
      case Nbd.CMD_READ:
        return Math.min(PIECE, r.length - r.sent) + REPLY_COST;
      case Nbd.CMD_BLOCK_STATUS:
        long extents = (r.flags & Nbd.CMD_FLAG_REQ_ONE) != 0 ? 1
            : Math.min(MAX_EXTENTS, (r.length >>> Pages.PAGE_SHIFT) + 2);
        return REPLY_COST + 8 * extents;
      default:
        return REPLY_COST;
    }
  }

  private boolean admits(NbdRequest r, long cost) {
    if (outputOwner != null) {
      // Only the long READ that owns the output goes on (past this connection's own budget if the
      // replies it holds back fill it: they are freed by its end).
      return r == outputOwner && budget.fits(cost);
    }
    return charged + cost <= limit && budget.fits(cost);
  }

  private void charge(long bytes) {
    charged += bytes;
    budget.charge(bytes);
  }

  private void release(long bytes) {
    if (bytes != 0) {
      charged -= bytes;
      budget.release(bytes);
    }
  }

  /** Starts waiting requests that now fit, in order. */
  private void pump() {
    while (!waiting.isEmpty()) {
      NbdRequest r = waiting.peek();
      if (closed) {
        waiting.poll();
        abandon(r);
        continue;
      }
      long cost = cost(r);
      if (!admits(r, cost)) {
        break;
      }
      waiting.poll();
      r.charge = cost;
      charge(cost);
      if (r.sent > 0) {
        read(r);
      } else {
        dispatchGuarded(r);
      }
    }
  }

  /** Stops reading while over a budget (or too many requests wait), resumes under half of it. */
  private void updateReading() {
    if (closed) {
      return;
    }
    boolean stop = disconnecting || inFlight >= MAX_IN_FLIGHT || !waiting.isEmpty() || charged >= limit
        || budget.spent();
    if (stop) {
      if (!paused) {
        paused = true;
        channel.config().setAutoRead(false);
        if (!disconnecting) {
          budget.paused();
        }
      }
    } else if (paused && charged <= resumeAt && inFlight <= MAX_IN_FLIGHT / 2) {
      paused = false;
      channel.config().setAutoRead(true);
    }
    boolean gatewayBound = budget.spent() || (!waiting.isEmpty() && !budget.fits(cost(waiting.peek())));
    if (paused && !disconnecting && gatewayBound && !awaitingBudget) {
      awaitingBudget = true;
      budget.await(this);
    }
  }

  /** The gateway's budget has room again (called from any thread). */
  void budgetFreed() {
    try {
      loop.execute(() -> {
        awaitingBudget = false;
        pump();
        updateReading();
      });
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // shutting down
    }
  }

  private void dispatchGuarded(NbdRequest r) {
    try {
      dispatch(r);
    } catch (RuntimeException e) {
      LOG.error("failed to serve {} on export '{}'", Nbd.commandName(r.type), export.name(), e);
      error(r, Nbd.EIO, "gateway error: " + e);
    }
  }

  private void dispatch(NbdRequest r) {
    long size = export.size();
    boolean pastEnd = r.offset < 0 || r.offset > size || r.length > size - r.offset;
    if (ns.readOnly()) {
      // Standing by: the export's attachment may have been claimed since (by another connection's
      // write). A connection whose attachment was fenced never moves on: it is the stale writer.
      Namespace cur = export.namespace;
      if (cur != ns && !cur.fenced()) {
        ns = cur;
      }
      if (ns.readOnly() && !r.streamed && writes(r.type)) {
        awaitClaim(r);
        return;
      }
    }
    switch (r.type) {
      case Nbd.CMD_READ:
        // Any length is served (the protocol's default maximum, without negotiated block sizes, is
        // effectively unlimited): a long one a piece at a time.
        if (pastEnd) {
          error(r, Nbd.EINVAL, "READ past the end of the export");
        } else {
          read(r);
        }
        break;
      case Nbd.CMD_WRITE:
        if (r.streamed) {
          streamedWrite(r, pastEnd);
        } else if (pastEnd) {
          error(r, Nbd.ENOSPC, "WRITE past the end of the export");
        } else {
          write(r);
        }
        break;
      case Nbd.CMD_WRITE_ZEROES:
        if (pastEnd) {
          error(r, Nbd.ENOSPC, "WRITE_ZEROES past the end of the export");
        } else {
          writeZeroes(r);
        }
        break;
      case Nbd.CMD_TRIM:
        if (pastEnd) {
          error(r, Nbd.EINVAL, "TRIM past the end of the export");
        } else {
          trim(r);
        }
        break;
      case Nbd.CMD_FLUSH:
        // Every write is acknowledged only once the servers hold it: there is nothing to flush.
        ok(r);
        break;
      case Nbd.CMD_CACHE:
        if (pastEnd) {
          error(r, Nbd.EINVAL, "CACHE past the end of the export");
        } else {
          ok(r);
        }
        break;
      case Nbd.CMD_BLOCK_STATUS:
        if (!allocationContext) {
          error(r, Nbd.EINVAL, "BLOCK_STATUS needs the base:allocation context (NBD_OPT_SET_META_CONTEXT)");
        } else if (pastEnd || r.length == 0) {
          error(r, Nbd.EINVAL, "BLOCK_STATUS outside the export");
        } else {
          blockStatus(r);
        }
        break;
      default:
        error(r, Nbd.EINVAL, "unknown command " + r.type);
    }
  }

  // ---------------------------------------------------------------- commands

  /** First byte of what {@code r} reads or writes now: a long READ's current piece. */
  private static long from(NbdRequest r) {
    return r.offset + r.sent;
  }

  private static long span(NbdRequest r) {
    return r.chunked() ? Math.min(PIECE, r.length - r.sent) : r.length;
  }

  private static long firstPage(NbdRequest r) {
    return from(r) >>> Pages.PAGE_SHIFT;
  }

  private static long lastPage(NbdRequest r) {
    return (from(r) + span(r) - 1) >>> Pages.PAGE_SHIFT;
  }

  private void read(NbdRequest r) {
    if (r.length == 0) {
      ok(r);
      return;
    }
    export.ordering.enter(r, firstPage(r), lastPage(r), false);
    whenReady(r);
  }

  private void write(NbdRequest r) {
    if (r.length == 0) {
      r.releasePayload();
      ok(r);
      return;
    }
    export.ordering.enter(r, firstPage(r), lastPage(r), true);
    whenReady(r);
  }

  /**
   * Starts a READ (or a long READ's next piece), a WRITE or a piece of a long WRITE whose turn has
   * come; its cluster I/O ends in {@link #ioDone}.
   */
  private void start(NbdRequest r) {
    long first = firstPage(r);
    int pages = (int) (lastPage(r) - first + 1);
    if (r.type == Nbd.CMD_READ && pages >= SHARED_READ_PAGES) {
      ns.readShared(first, pages, channel.alloc(), r);
    } else if (r.type == Nbd.CMD_READ) {
      r.buffer = channel.alloc().directBuffer(pages * Pages.PAGE_SIZE);
      ns.read(first, pages, r.buffer, r);
    } else if ((r.offset & (Pages.PAGE_SIZE - 1)) == 0 && (r.length & (Pages.PAGE_SIZE - 1)) == 0) {
      ns.write(first, pages, r.payload, r);
    } else {
      ByteBuf merged = channel.alloc().directBuffer(pages * Pages.PAGE_SIZE);
      r.buffer = merged;
      readModifyWrite(first, pages, r.offset, r.payload, merged).whenComplete((v, err) ->
          ioDone(r, err == null ? null : VmdException.from(err)));
    }
  }

  /**
   * A READ's, WRITE's or piece's cluster I/O has finished (on any thread): on the connection's loop,
   * release its pages in the order and answer.
   */
  void ioDone(NbdRequest r, VmdException err) {
    if (!loop.inEventLoop()) {
      r.error = err;
      try {
        loop.execute(r);
      } catch (java.util.concurrent.RejectedExecutionException e) {
        // the gateway is shutting down: nothing left to answer to
      }
      return;
    }
    export.ordering.release(r);
    ByteBuf buf = r.buffer;
    r.buffer = null;
    try {
      if (r.type == NbdRequest.PIECE) {
        if (buf != null) {
          buf.release();
        }
        pieceDone(r, err);
      } else if (r.type == Nbd.CMD_READ) {
        if (err != null) {
          if (buf != null) {
            buf.release();
          }
          if (r.sent > 0 && !structured) {
            brokenReply(r, err);
          } else {
            failed(r, err);
          }
          return;
        }
        long n = span(r);
        export.metrics.read(lastPage(r) - firstPage(r) + 1, n);
        int skip = (int) (from(r) & (Pages.PAGE_SIZE - 1));
        buf.readerIndex(skip).writerIndex(skip + (int) n);
        if (r.chunked()) {
          replyPiece(r, buf, n);
        } else {
          replyData(r, buf);
        }
      } else {
        if (buf != null) {
          buf.release();
        }
        r.releasePayload();
        if (err != null) {
          failed(r, err);
        } else {
          export.metrics.written(lastPage(r) - firstPage(r) + 1, r.length);
          ok(r);
        }
      }
    } catch (RuntimeException e) {
      LOG.error("failed to answer {} on export '{}'", Nbd.commandName(r.type), export.name(), e);
      channel.close();
    }
  }

  // ---------------------------------------------------------------- long requests

  /** A WRITE longer than a piece: its payload follows as pieces, each written as it comes. */
  private void streamedWrite(NbdRequest r, boolean pastEnd) {
    streaming = r;
    if (ns.readOnly()) {
      // Its payload is arriving and cannot wait here for the control plane: refused, and the
      // namespace asked for so that the client's retry may find the export writable.
      export.claim();
      r.errno = Nbd.EPERM;
      r.message = standbyMessage(r);
    } else if (pastEnd) {
      r.errno = Nbd.ENOSPC;
      r.message = "WRITE past the end of the export";
    }
  }

  /** One piece of the payload of the WRITE being streamed: charged (its bytes are here) and written. */
  private void piece(NbdRequest p) {
    NbdRequest parent = streaming;
    if (parent == null) {
      // A piece of a WRITE that came after NBD_CMD_DISC: not served.
      drop(p);
      return;
    }
    p.session = this;
    p.parent = parent;
    parent.remaining -= p.length;
    if (parent.remaining == 0) {
      streaming = null;
    }
    p.charge = p.length;
    charge(p.charge);
    if (parent.errno != 0 || closed) {
      p.releasePayload();
      release(p.charge);
      p.recycle();
    } else {
      parent.outstanding++;
      export.ordering.enter(p, firstPage(p), lastPage(p), true);
      whenReady(p);
    }
    if (parent.remaining == 0) {
      finishStream(parent);
    }
    updateReading();
  }

  private void pieceDone(NbdRequest p, VmdException err) {
    NbdRequest parent = p.parent;
    p.releasePayload();
    if (err != null) {
      if (parent.errno == 0) {
        parent.errno = errno(err);
        parent.message = err.getMessage();
        LOG.warn("WRITE at {} (+{}) on export '{}' failed: {}", parent.offset, parent.length, export.name(),
            err.getMessage());
      }
    } else {
      export.metrics.written(lastPage(p) - firstPage(p) + 1, p.length);
    }
    parent.outstanding--;
    long charge = p.charge;
    p.recycle();
    finishStream(parent);
    release(charge);
    pump();
    updateReading();
  }

  /** Answers a streamed WRITE once all its payload came and every piece has been written. */
  private void finishStream(NbdRequest parent) {
    if (parent.remaining == 0 && parent.outstanding == 0) {
      if (parent.errno != 0) {
        error(parent, parent.errno, parent.message);
      } else {
        ok(parent);
      }
    }
  }

  /** One piece of a long READ has been read: send it, and ask for the budget of the next one. */
  private void replyPiece(NbdRequest r, ByteBuf data, long n) {
    if (!structured && outputOwner != null && outputOwner != r) {
      // Another long simple reply is being written: this one's header and bytes may not come between
      // its pieces. The piece waits (its budget already held) until that reply is out.
      r.buffer = data;
      if (deferred == null) {
        deferred = new ArrayDeque<>();
      }
      deferred.add(r);
      return;
    }
    long at = from(r);
    r.sent += n;
    boolean last = r.sent == r.length;
    ByteBuf header = null;
    if (structured) {
      header = channel.alloc().buffer(28);
      header.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(last ? Nbd.REPLY_FLAG_DONE : 0)
          .writeShort(Nbd.REPLY_TYPE_OFFSET_DATA).writeLong(r.handleId).writeInt(8 + (int) n).writeLong(at);
    } else if (at == r.offset) {
      // One simple reply: its header, then every piece's bytes, with nothing in between.
      header = channel.alloc().buffer(16);
      header.writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(0).writeLong(r.handleId);
      outputOwner = r;
    }
    if (last) {
      if (header != null) {
        channel.write(header, channel.voidPromise());
      }
      send(r, data);
      return;
    }
    if (header != null) {
      channel.write(header, channel.voidPromise());
    }
    FlushBatch.writeAndFlush(channel, data, channel.newPromise().addListener(f -> pieceSent(r)));
  }

  /** A long READ's piece has left: its budget is free; the next piece waits for its own. */
  private void pieceSent(NbdRequest r) {
    release(r.charge);
    r.charge = 0;
    if (closed) {
      abandon(r);
    } else {
      waiting.addFirst(r);
    }
    pump();
    updateReading();
  }

  /**
   * A long READ with a simple reply failed after its header went out with no error: only closing the
   * connection tells the client (the protocol's hard disconnect).
   */
  private void brokenReply(NbdRequest r, VmdException err) {
    LOG.warn("READ at {} (+{}) on export '{}' failed after {} bytes were sent: {}; closing the connection",
        r.offset, r.length, export.name(), r.sent, err.getMessage());
    export.metrics.error();
    channel.close();
    abandon(r);
  }

  /** Forgets a request that will not be answered (its connection is gone); frees what it held. */
  private void abandon(NbdRequest r) {
    release(r.charge);
    r.charge = 0;
    if (outputOwner == r) {
      unlockOutput();
    }
    r.releasePayload();
    r.recycle();
    inFlight--;
  }

  private void drop(NbdRequest r) {
    r.releasePayload();
    r.recycle();
  }

  /**
   * Reads the partial first and last pages into {@code pages}, lays {@code data} (or zeros when null)
   * over them at {@code offset}, and writes the whole run back.
   */
  private CompletableFuture<Void> readModifyWrite(long first, int count, long offset, ByteBuf data, ByteBuf buf) {
    int from = (int) (offset & (Pages.PAGE_SIZE - 1));
    int length = data != null ? data.readableBytes() : 0;
    buf.writerIndex(count * Pages.PAGE_SIZE);
    CompletableFuture<Void> head = ns.read(first, 1, buf.slice(0, Pages.PAGE_SIZE).writerIndex(0));
    CompletableFuture<Void> tail = count == 1
        ? CompletableFuture.completedFuture(null)
        : ns.read(first + count - 1, 1, buf.slice((count - 1) * Pages.PAGE_SIZE, Pages.PAGE_SIZE).writerIndex(0));
    return CompletableFuture.allOf(head, tail).thenCompose(v -> {
      if (data != null) {
        buf.setBytes(from, data, data.readerIndex(), length);
      }
      return ns.write(first, count, buf);
    });
  }

  private void writeZeroes(NbdRequest r) {
    if (r.length == 0) {
      ok(r);
      return;
    }
    long first = firstPage(r);
    long last = lastPage(r);
    long end = r.offset + r.length;
    boolean headPartial = (r.offset & (Pages.PAGE_SIZE - 1)) != 0;
    boolean tailPartial = (end & (Pages.PAGE_SIZE - 1)) != 0 && !(headPartial && last == first);
    // Whole pages inside the range become holes (deleted: they read as zeros and their memory goes
    // back) unless NO_HOLE asks for written zeros; partial edge pages are zeroed in place.
    long wholeFirst = (r.offset + Pages.PAGE_SIZE - 1) >>> Pages.PAGE_SHIFT;
    long wholeEnd = end >>> Pages.PAGE_SHIFT;
    boolean noHole = (r.flags & Nbd.CMD_FLAG_NO_HOLE) != 0;
    PageOrdering.Entry e = export.ordering.enter(first, last, true);
    whenReady(e, r, () -> {
      CompletableFuture<Void> work = CompletableFuture.completedFuture(null);
      if (headPartial) {
        work = work.thenCompose(v -> zeroPartial(first, r.offset, Math.min(end, (first + 1) << Pages.PAGE_SHIFT)));
      }
      if (wholeEnd > wholeFirst) {
        work = work.thenCompose(v -> noHole ? writeZeroPages(wholeFirst, wholeEnd - wholeFirst)
            : ns.delete(wholeFirst, wholeEnd - wholeFirst));
      }
      if (tailPartial) {
        work = work.thenCompose(v -> zeroPartial(last, Math.max(r.offset, last << Pages.PAGE_SHIFT), end));
      }
      work.whenComplete((v, err) -> {
        export.ordering.release(e);
        if (err != null) {
          failed(r, err);
        } else {
          export.metrics.written(last - first + 1, r.length);
          ok(r);
        }
      });
    });
  }

  /** Zeros bytes [from, to) of one page by read-modify-write. */
  private CompletableFuture<Void> zeroPartial(long page, long from, long to) {
    ByteBuf buf = channel.alloc().directBuffer(Pages.PAGE_SIZE);
    ByteBuf zeros = channel.alloc().buffer((int) (to - from)).writeZero((int) (to - from));
    return readModifyWrite(page, 1, from, zeros, buf).whenComplete((v, err) -> {
      buf.release();
      zeros.release();
    });
  }

  private CompletableFuture<Void> writeZeroPages(long first, long count) {
    CompletableFuture<Void> all = CompletableFuture.completedFuture(null);
    for (long at = first; at < first + count; at += 256) {
      int n = (int) Math.min(256, first + count - at);
      long page = at;
      all = all.thenCompose(v -> {
        ByteBuf zeros = channel.alloc().directBuffer(n * Pages.PAGE_SIZE).writeZero(n * Pages.PAGE_SIZE);
        return ns.write(page, n, zeros).whenComplete((x, err) -> zeros.release());
      });
    }
    return all;
  }

  private void trim(NbdRequest r) {
    // Only whole pages can be given back; the contents of trimmed partial pages may stay as they are.
    long wholeFirst = (r.offset + Pages.PAGE_SIZE - 1) >>> Pages.PAGE_SHIFT;
    long wholeEnd = (r.offset + r.length) >>> Pages.PAGE_SHIFT;
    if (wholeEnd <= wholeFirst) {
      ok(r);
      return;
    }
    long count = wholeEnd - wholeFirst;
    PageOrdering.Entry e = export.ordering.enter(wholeFirst, wholeEnd - 1, true);
    whenReady(e, r, () -> ns.delete(wholeFirst, count).whenComplete((v, err) -> {
      export.ordering.release(e);
      if (err != null) {
        failed(r, err);
      } else {
        export.metrics.trimmed(count);
        ok(r);
      }
    }));
  }

  private void blockStatus(NbdRequest r) {
    LocationTable table = ns.locations();
    long end = r.offset + r.length;
    boolean one = (r.flags & Nbd.CMD_FLAG_REQ_ONE) != 0;
    int max = one ? 1 : MAX_EXTENTS;
    ByteBuf out = channel.alloc().buffer(64);
    out.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(Nbd.REPLY_FLAG_DONE).writeShort(Nbd.REPLY_TYPE_BLOCK_STATUS)
        .writeLong(r.handleId).writeInt(0).writeInt(Nbd.ALLOCATION_CONTEXT_ID);
    long at = r.offset;
    int extents = 0;
    while (at < end && extents < max) {
      long page = at >>> Pages.PAGE_SHIFT;
      // While a server that may hold pages has not answered, no page is known to be a hole.
      boolean complete = ns.complete();
      boolean stored = !complete || table.stored(page);
      long next = (page + 1) << Pages.PAGE_SHIFT;
      while (next < end && (!complete || table.stored(next >>> Pages.PAGE_SHIFT)) == stored && next - at < 0x7fff_f000L) {
        next += Pages.PAGE_SIZE;
      }
      next = Math.min(next, end);
      out.writeInt((int) (next - at)).writeInt(stored ? 0 : Nbd.STATE_HOLE | Nbd.STATE_ZERO);
      extents++;
      at = next;
    }
    out.setInt(16, out.readableBytes() - 20);
    send(r, out);
  }

  // ---------------------------------------------------------------- replies

  private void ok(NbdRequest r) {
    ByteBuf out = channel.alloc().buffer(20);
    if (structured && r.type == Nbd.CMD_READ) {
      out.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(Nbd.REPLY_FLAG_DONE).writeShort(Nbd.REPLY_TYPE_NONE)
          .writeLong(r.handleId).writeInt(0);
    } else {
      out.writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(0).writeLong(r.handleId);
    }
    send(r, out);
  }

  private void replyData(NbdRequest r, ByteBuf data) {
    ByteBuf header = channel.alloc().buffer(28);
    if (structured) {
      header.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(Nbd.REPLY_FLAG_DONE)
          .writeShort(Nbd.REPLY_TYPE_OFFSET_DATA).writeLong(r.handleId).writeInt(8 + data.readableBytes())
          .writeLong(r.offset);
    } else {
      header.writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(0).writeLong(r.handleId);
    }
    if (outputOwner != null) {
      // Behind a long simple reply: header and data wait together.
      send(r, channel.alloc().compositeDirectBuffer(2).addComponents(true, header, data));
      return;
    }
    // On the loop nothing can come between the two writes: no composite buffer needed.
    channel.write(header, channel.voidPromise());
    send(r, data);
  }

  private static boolean writes(int type) {
    return type == Nbd.CMD_WRITE || type == Nbd.CMD_WRITE_ZEROES || type == Nbd.CMD_TRIM;
  }

  /**
   * A write to an export that stands by waits for the namespace to be claimed for this gateway, and
   * is served if it is; else EPERM (the owner keeps it), as NBD answers a write the server refuses.
   */
  private void awaitClaim(NbdRequest r) {
    export.claim().whenComplete((granted, err) -> {
      try {
        loop.execute(() -> {
          Namespace cur = export.namespace;
          if (cur.writable()) {
            ns = cur;
            dispatchGuarded(r);
          } else {
            error(r, Nbd.EPERM, standbyMessage(r) + (err == null ? "" : " (" + VmdException.from(err).getMessage() + ")"));
          }
        });
      } catch (java.util.concurrent.RejectedExecutionException closing) {
        // the gateway is shutting down; the connection goes with it
      }
    });
  }

  private String standbyMessage(NbdRequest r) {
    return Nbd.commandName(r.type) + " to export '" + export.name() + "', which another gateway or client "
        + "owns: this gateway writes it once the owner hands it over or its lease runs out";
  }

  private static int errno(VmdException v) {
    switch (v.code()) {
      case READ_ONLY:
        return Nbd.EPERM;
      case NO_SPACE:
        return Nbd.ENOSPC;
      case BAD_REQUEST:
        return Nbd.EINVAL;
      default:
        return Nbd.EIO;
    }
  }

  private void failed(NbdRequest r, Throwable err) {
    VmdException v = VmdException.from(err);
    LOG.warn("{} at {} (+{}) on export '{}' failed: {}", Nbd.commandName(r.type), r.offset, r.length,
        export.name(), v.getMessage());
    error(r, errno(v), v.getMessage());
  }

  private void error(NbdRequest r, int errno, String message) {
    r.releasePayload();
    export.metrics.error();
    ByteBuf out;
    if (structured) {
      byte[] m = message.getBytes(StandardCharsets.UTF_8);
      int len = Math.min(m.length, 1024);
      out = channel.alloc().buffer(26 + len);
      out.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(Nbd.REPLY_FLAG_DONE).writeShort(Nbd.REPLY_TYPE_ERROR)
          .writeLong(r.handleId).writeInt(6 + len).writeInt(errno).writeShort(len).writeBytes(m, 0, len);
    } else {
      out = channel.alloc().buffer(16);
      out.writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(errno).writeLong(r.handleId);
    }
    send(r, out);
  }

  /**
   * Writes a request's (last) reply; the request is finished, and its budget freed, when the reply
   * has left for the socket. Runs on the loop (completions elsewhere come here first).
   */
  private void send(NbdRequest r, ByteBuf reply) {
    if (!loop.inEventLoop()) {
      try {
        loop.execute(() -> send(r, reply));
      } catch (java.util.concurrent.RejectedExecutionException e) {
        reply.release();
      }
      return;
    }
    export.metrics.latency(r.type, r.startNanos);
    if (outputOwner != null && outputOwner != r) {
      if (held == null) {
        held = new ArrayDeque<>();
      }
      held.add(reply);
      held.add(r);
      return;
    }
    // A failed write surfaces as exceptionCaught and closes the connection; the promise still completes.
    FlushBatch.writeAndFlush(channel, reply, channel.newPromise().addListener(r));
    if (outputOwner == r) {
      unlockOutput();
    }
  }

  /**
   * The long simple reply is written: the replies that waited behind it go out, then the next long
   * READ whose first piece waits takes the output.
   */
  private void unlockOutput() {
    outputOwner = null;
    ArrayDeque<Object> h = held;
    held = null;
    while (h != null && !h.isEmpty()) {
      ByteBuf reply = (ByteBuf) h.poll();
      NbdRequest r = (NbdRequest) h.poll();
      FlushBatch.writeAndFlush(channel, reply, channel.newPromise().addListener(r));
    }
    NbdRequest next = deferred == null ? null : deferred.poll();
    if (next != null) {
      ByteBuf data = next.buffer;
      next.buffer = null;
      if (closed) {
        data.release();
        abandon(next);
      } else {
        replyPiece(next, data, span(next));
      }
    }
  }

  /** {@code r}'s reply has left (or the connection is gone): free its budget, recycle it. */
  void replied(NbdRequest r) {
    release(r.charge);
    r.recycle();
    inFlight--;
    pump();
    updateReading();
    closeIfDone();
  }

  private void closeIfDone() {
    if (disconnecting && inFlight == 0 && !closed) {
      channel.close();
    }
  }

  /** Starts a READ or WRITE now, or when the requests it overlaps have finished. */
  private void whenReady(NbdRequest r) {
    if (r.ready == null) {
      startGuarded(r);
    } else {
      r.ready.thenRun(() -> startGuarded(r));
    }
  }

  private void startGuarded(NbdRequest r) {
    try {
      start(r);
    } catch (RuntimeException ex) {
      LOG.error("failed to serve {} on export '{}'", Nbd.commandName(r.type), export.name(), ex);
      if (r.buffer != null) {
        r.buffer.release();
        r.buffer = null;
      }
      ioDone(r, new VmdException(io.vmd.protocol.ErrorCode.INTERNAL, "gateway error: " + ex, ex));
    }
  }

  /**
   * Runs {@code body} once the request's turn comes. Whatever it throws becomes an EIO reply and
   * frees the request's place in the order, so no request is left unanswered.
   */
  private void whenReady(PageOrdering.Entry e, NbdRequest r, Runnable body) {
    if (e.ready == null) {
      guarded(e, r, body);
    } else {
      e.ready.thenRun(() -> guarded(e, r, body));
    }
  }

  private void guarded(PageOrdering.Entry e, NbdRequest r, Runnable body) {
    try {
      body.run();
    } catch (RuntimeException ex) {
      export.ordering.release(e);
      LOG.error("failed to serve {} on export '{}'", Nbd.commandName(r.type), export.name(), ex);
      error(r, Nbd.EIO, "gateway error: " + ex);
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    endBatch();
    ctx.fireChannelReadComplete();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    endBatch();
    closed = true;
    // What will never be answered frees its budget now; what runs frees it when its reply fails.
    while (!waiting.isEmpty()) {
      abandon(waiting.poll());
    }
    NbdRequest s = streaming;
    if (s != null) {
      streaming = null;
      s.remaining = 0;
      if (s.errno == 0) {
        s.errno = Nbd.ESHUTDOWN;
        s.message = "connection closed before the payload came";
      }
      finishStream(s);
    }
    if (outputOwner != null) {
      unlockOutput();
    }
    while (deferred != null && !deferred.isEmpty()) {
      NbdRequest r = deferred.poll();
      if (r.buffer != null) {
        r.buffer.release();
        r.buffer = null;
      }
      abandon(r);
    }
    ctx.fireChannelInactive();
  }

  private void endBatch() {
    if (batching) {
      batching = false;
      FlushBatch.current().close();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    if (c instanceof ProtocolException) {
      LOG.warn("closing NBD connection from {} to export '{}': {}", ctx.channel().remoteAddress(), export.name(),
          c.getMessage());
    } else if (c instanceof IOException) {
      LOG.debug("NBD connection from {} failed: {}", ctx.channel().remoteAddress(), c.toString());
    } else {
      LOG.error("closing NBD connection from {}", ctx.channel().remoteAddress(), c);
    }
    ctx.close();
  }
}
