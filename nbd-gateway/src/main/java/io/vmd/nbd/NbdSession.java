package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.DecoderException;
import io.vmd.client.Namespace;
import io.vmd.client.VmdException;
import io.vmd.common.FlushBatch;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import io.vmd.protocol.ProtocolException;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one NBD connection, built as nbdkit's {@code protocol.c} is: every request
 * is admitted by its {@link ConnectionBudget}, checked once by {@link #validate}, then handled by one
 * method per command; {@link ReplyWriter} sends each reply type. Requests run concurrently and are
 * answered as they finish, out of order; requests on overlapping pages of the export are ordered by
 * the export's {@link PageOrdering}. Errors are replies and the connection lives on; only a protocol
 * violation closes it.
 *
 * <p>Requests longer than one {@link #PIECE} are served a piece at a time: a long READ as several reply
 * chunks (or one simple reply written piece by piece), a long WRITE piece by piece as its payload
 * arrives. All bookkeeping runs on the connection's event loop; completions from the cluster come back
 * to it.
 */
final class NbdSession extends ChannelInboundHandlerAdapter implements ConnectionBudget.Session, ReplyWriter.Owner {
  private static final Logger LOG = LoggerFactory.getLogger(NbdSession.class);
  /** Bytes of a long READ or WRITE handled at a time (a power of two, a multiple of the page). */
  static final int PIECE = 4 << 20;
  private static final int MAX_EXTENTS = 65536;

  private final Export export;
  /** The attachment this connection reads and writes through (see {@link #standingBy} for when it changes). */
  private Namespace ns;
  private final boolean structured;
  private final boolean allocationContext;
  private final GatewayBudget gatewayBudget;
  private Channel channel;
  private EventLoop loop;
  private ConnectionBudget budget;
  private ReplyWriter replies;
  private PageTransfers transfers;
  private boolean disconnecting;
  private boolean closed;
  /** How long a write to a standing-by export waits for the namespace before EPERM. */
  static final long STANDBY_WAIT_NANOS = 3_000_000_000L;
  /** How often it asks meanwhile (the registry asks the control plane at most every 500 ms). */
  private static final long STANDBY_RETRY_MILLIS = 100;
  /** Whether this read burst opened the loop's flush batch (closed in channelReadComplete). */
  private boolean batching;

  NbdSession(Export export, boolean structured, boolean allocationContext, GatewayBudget budget) {
    this.export = export;
    this.ns = export.namespace;
    this.structured = structured;
    this.allocationContext = allocationContext;
    this.gatewayBudget = budget;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    channel = ctx.channel();
    loop = channel.eventLoop();
    budget = new ConnectionBudget(gatewayBudget, channel, this);
    replies = new ReplyWriter(channel, structured, export.metrics, this);
    transfers = new PageTransfers(this, export, channel, budget, replies);
  }

  String describe() {
    return budget.describe() + " closed=" + closed + " disconnecting=" + disconnecting;
  }

  @Override
  public boolean closed() {
    return closed;
  }

  @Override
  public boolean disconnecting() {
    return disconnecting;
  }

  @Override
  public NbdRequest outputOwner() {
    return replies.outputOwner();
  }

  // ---------------------------------------------------------------- admission

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    NbdRequest r = (NbdRequest) msg;
    if (r.type == NbdRequest.PIECE) {
      transfers.piece(r);
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
    if (r.type == NbdProtocol.CMD_DISC) {
      disconnect(r);
      return;
    }
    budget.received();
    r.session = this;
    if (r.type == NbdProtocol.CMD_WRITE) {
      // Its payload is here already: holding it back frees nothing. Charge it and let it run.
      budget.chargeNow(r, (r.payload == null ? 0 : r.payload.readableBytes()) + ConnectionBudget.REPLY_COST);
      serve(r);
    } else if (budget.admitOrQueue(r)) {
      serve(r);
    }
    budget.updateReading();
  }

  /** A request that waited for the budget fits now: a new one is served, a long READ reads its next piece. */
  @Override
  public void admitted(NbdRequest r) {
    if (r.sent > 0) {
      read(r);
    } else {
      serve(r);
    }
  }

  /** Validates, then runs the command; whatever it throws becomes an EIO reply. */
  private void serve(NbdRequest r) {
    try {
      String invalid = validate(r);
      if (invalid != null) {
        reject(r, r.type == NbdProtocol.CMD_WRITE || r.type == NbdProtocol.CMD_WRITE_ZEROES
            ? NbdProtocol.ENOSPC : NbdProtocol.EINVAL, invalid);
      } else if (!standingBy(r)) {
        dispatch(r);
      }
    } catch (RuntimeException e) {
      LOG.error("failed to serve {} on export '{}'", NbdProtocol.commandName(r.type), export.name(), e);
      error(r, NbdProtocol.EIO, "gateway error: " + e);
    }
  }

  /**
   * The one check of a request before any command runs (nbdkit's {@code validate_request}): null when
   * it may run, else why not. Past the end is ENOSPC for writes, EINVAL for the rest, as nbdkit answers.
   */
  private String validate(NbdRequest r) {
    long size = export.size();
    boolean pastEnd = r.offset < 0 || r.offset > size || r.length > size - r.offset;
    switch (r.type) {
      case NbdProtocol.CMD_READ:
      case NbdProtocol.CMD_WRITE:
      case NbdProtocol.CMD_WRITE_ZEROES:
      case NbdProtocol.CMD_TRIM:
      case NbdProtocol.CMD_CACHE:
        return pastEnd ? NbdProtocol.commandName(r.type) + " past the end of the export" : null;
      case NbdProtocol.CMD_FLUSH:
        return null;
      case NbdProtocol.CMD_BLOCK_STATUS:
        if (!allocationContext) {
          return "BLOCK_STATUS needs the base:allocation context (NBD_OPT_SET_META_CONTEXT)";
        }
        return pastEnd || r.length == 0 ? "BLOCK_STATUS outside the export" : null;
      default:
        return "unknown command " + r.type;
    }
  }

  /**
   * Whether the export stands by for another owner and {@code r} writes: it then waits for the
   * namespace to be claimed for this gateway. A connection whose attachment was fenced never moves
   * on: it is the stale writer.
   */
  private boolean standingBy(NbdRequest r) {
    if (!ns.readOnly()) {
      return false;
    }
    Namespace cur = export.namespace;
    if (cur != ns && !cur.fenced()) {
      ns = cur;
    }
    if (!ns.readOnly() || !writes(r.type)) {
      return false;
    }
    if (r.streamed) {
      // Its payload is arriving and cannot wait here for the control plane: refused, and the
      // namespace asked for so that the client's retry may find the export writable.
      export.claim();
      reject(r, NbdProtocol.EPERM, standbyMessage(r));
    } else {
      awaitClaim(r);
    }
    return true;
  }

  private void dispatch(NbdRequest r) {
    switch (r.type) {
      case NbdProtocol.CMD_READ -> read(r);
      case NbdProtocol.CMD_WRITE -> write(r);
      case NbdProtocol.CMD_WRITE_ZEROES -> writeZeroes(r);
      case NbdProtocol.CMD_TRIM -> trim(r);
      // Every write is acknowledged only once the servers hold it: there is nothing to flush.
      case NbdProtocol.CMD_FLUSH -> replies.ok(r);
      case NbdProtocol.CMD_CACHE -> replies.ok(r);
      case NbdProtocol.CMD_BLOCK_STATUS -> blockStatus(r);
      default -> throw new IllegalStateException("validated command " + r.type + " has no handler");
    }
  }

  // ---------------------------------------------------------------- commands

  /** Any length is served (without negotiated block sizes the protocol's maximum is unlimited): a long one a piece at a time. */
  private void read(NbdRequest r) {
    if (r.length == 0) {
      replies.ok(r);
      return;
    }
    transfers.transfer(r, false);
  }

  private void write(NbdRequest r) {
    if (r.streamed) {
      transfers.stream(r);
      return;
    }
    if (r.length == 0) {
      r.releasePayload();
      replies.ok(r);
      return;
    }
    transfers.transfer(r, true);
  }

  /**
   * Whole pages inside the range become holes (deleted: they read as zeros and their memory goes back)
   * unless NO_HOLE asks for written zeros; partial edge pages are zeroed in place.
   */
  private void writeZeroes(NbdRequest r) {
    if (r.length == 0) {
      replies.ok(r);
      return;
    }
    long first = r.firstPage();
    long last = r.lastPage();
    long end = r.offset + r.length;
    boolean headPartial = (r.offset & (Pages.PAGE_SIZE - 1)) != 0;
    boolean tailPartial = (end & (Pages.PAGE_SIZE - 1)) != 0 && !(headPartial && last == first);
    long wholeFirst = (r.offset + Pages.PAGE_SIZE - 1) >>> Pages.PAGE_SHIFT;
    long wholeEnd = end >>> Pages.PAGE_SHIFT;
    boolean noHole = (r.flags & NbdProtocol.CMD_FLAG_NO_HOLE) != 0;
    Namespace target = ns;
    PageOrdering.Entry e = export.ordering.enter(first, last, true);
    whenReady(e, r, () -> {
      CompletableFuture<Void> work = CompletableFuture.completedFuture(null);
      if (headPartial) {
        work = work.thenCompose(v -> PartialPages.zero(target, channel.alloc(), first, r.offset,
            Math.min(end, (first + 1) << Pages.PAGE_SHIFT)));
      }
      if (wholeEnd > wholeFirst) {
        work = work.thenCompose(v -> noHole
            ? PartialPages.writeZeroPages(target, channel.alloc(), wholeFirst, wholeEnd - wholeFirst)
            : target.delete(wholeFirst, wholeEnd - wholeFirst));
      }
      if (tailPartial) {
        work = work.thenCompose(v -> PartialPages.zero(target, channel.alloc(), last,
            Math.max(r.offset, last << Pages.PAGE_SHIFT), end));
      }
      work.whenComplete((v, err) -> {
        export.ordering.release(e);
        if (err != null) {
          failed(r, err);
        } else {
          export.metrics.written(last - first + 1, r.length);
          replies.ok(r);
        }
      });
    });
  }

  /** Only whole pages can be given back; the contents of trimmed partial pages may stay as they are. */
  private void trim(NbdRequest r) {
    long wholeFirst = (r.offset + Pages.PAGE_SIZE - 1) >>> Pages.PAGE_SHIFT;
    long wholeEnd = (r.offset + r.length) >>> Pages.PAGE_SHIFT;
    if (wholeEnd <= wholeFirst) {
      replies.ok(r);
      return;
    }
    long count = wholeEnd - wholeFirst;
    Namespace target = ns;
    PageOrdering.Entry e = export.ordering.enter(wholeFirst, wholeEnd - 1, true);
    whenReady(e, r, () -> target.delete(wholeFirst, count).whenComplete((v, err) -> {
      export.ordering.release(e);
      if (err != null) {
        failed(r, err);
      } else {
        export.metrics.trimmed(count);
        replies.ok(r);
      }
    }));
  }

  /** How many extents a BLOCK_STATUS may answer with. */
  static int maxExtents(NbdRequest r) {
    return (r.flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0 ? 1
        : (int) Math.min(MAX_EXTENTS, (r.length >>> Pages.PAGE_SHIFT) + 2);
  }

  private void blockStatus(NbdRequest r) {
    long end = r.offset + r.length;
    int max = (r.flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0 ? 1 : MAX_EXTENTS;
    ByteBuf out = NbdReply.blockStatus(channel.alloc(), r.handleId, max);
    long at = r.offset;
    int extents = 0;
    while (at < end && extents < max) {
      long page = at >>> Pages.PAGE_SHIFT;
      // While a server that may hold pages has not answered, no page is known to be a hole.
      boolean complete = ns.complete();
      boolean stored = !complete || ns.stored(page);
      long next = (page + 1) << Pages.PAGE_SHIFT;
      while (next < end && (!complete || ns.stored(next >>> Pages.PAGE_SHIFT)) == stored && next - at < 0x7fff_f000L) {
        next += Pages.PAGE_SIZE;
      }
      next = Math.min(next, end);
      NbdReply.extent(out, (int) (next - at), stored ? 0 : NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO);
      extents++;
      at = next;
    }
    replies.send(r, NbdReply.endBlockStatus(out));
  }

  /** NBD_CMD_DISC: nothing after it is served; the connection closes once every request is answered. */
  private void disconnect(NbdRequest r) {
    disconnecting = true;
    r.recycle();
    budget.updateReading();
    closeIfDone();
  }

  private static boolean writes(int type) {
    return type == NbdProtocol.CMD_WRITE || type == NbdProtocol.CMD_WRITE_ZEROES || type == NbdProtocol.CMD_TRIM;
  }

  /**
   * A write to an export that stands by waits for the namespace to be claimed for this gateway, and
   * is served if it is; else EPERM (the owner keeps it), as NBD answers a write the server refuses.
   */
  private void awaitClaim(NbdRequest r) {
    awaitClaim(r, System.nanoTime() + STANDBY_WAIT_NANOS);
  }

  /**
   * Asks for the namespace until {@code until}: a write that meets the hand-over half done (the owner
   * fenced a moment later, or a refusal's backoff still running) waits for it rather than fail, since
   * a guest swapping here takes a failed write as lost memory. Refused only when the owner keeps it.
   */
  private void awaitClaim(NbdRequest r, long until) {
    export.claim().whenComplete((granted, err) -> {
      try {
        loop.execute(() -> {
          Namespace cur = export.namespace;
          if (cur.writable()) {
            ns = cur;
            serve(r);
          } else if (!closed && System.nanoTime() - until < 0) {
            loop.schedule(() -> awaitClaim(r, until), STANDBY_RETRY_MILLIS, TimeUnit.MILLISECONDS);
          } else {
            String why = standbyMessage(r) + (err == null ? "" : " (" + VmdException.from(err).getMessage() + ")");
            // Logged as a failed request is: a guest swapping here gets a write error from it.
            LOG.warn("{} at {} (+{}) refused: {}", NbdProtocol.commandName(r.type), r.offset, r.length, why);
            error(r, NbdProtocol.EPERM, why);
          }
        });
      } catch (RejectedExecutionException closing) {
        // the gateway is shutting down; the connection goes with it
      }
    });
  }

  private String standbyMessage(NbdRequest r) {
    return NbdProtocol.commandName(r.type) + " to export '" + export.name() + "', which another gateway or client "
        + "owns: this gateway writes it once the owner hands it over or its lease runs out";
  }

  // ---------------------------------------------------------------- errors and completion

  static int errno(VmdException v) {
    switch (v.code()) {
      case READ_ONLY:
        return NbdProtocol.EPERM;
      case NO_SPACE:
        return NbdProtocol.ENOSPC;
      case BAD_REQUEST:
        return NbdProtocol.EINVAL;
      default:
        return NbdProtocol.EIO;
    }
  }

  void failed(NbdRequest r, Throwable err) {
    VmdException v = VmdException.from(err);
    LOG.warn("{} at {} (+{}) on export '{}' failed: {}", NbdProtocol.commandName(r.type), r.offset, r.length,
        export.name(), v.getMessage());
    error(r, errno(v), v.getMessage());
  }

  /** Refuses a request; a streamed WRITE's refusal waits until its payload has passed. */
  private void reject(NbdRequest r, int errno, String message) {
    if (r.streamed) {
      transfers.stream(r);
      r.errno = errno;
      r.message = message;
    } else {
      error(r, errno, message);
    }
  }

  void error(NbdRequest r, int errno, String message) {
    r.releasePayload();
    export.metrics.error();
    replies.error(r, errno, message);
  }

  /** Runs {@code body} once the request's turn comes; whatever it throws becomes an EIO reply. */
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
      LOG.error("failed to serve {} on export '{}'", NbdProtocol.commandName(r.type), export.name(), ex);
      error(r, NbdProtocol.EIO, "gateway error: " + ex);
    }
  }

  /** {@code r}'s cluster I/O has finished (on any thread). */
  void ioDone(NbdRequest r, VmdException err) {
    transfers.ioDone(r, err);
  }

  @Override
  public void pieceSent(NbdRequest r) {
    transfers.pieceSent(r);
  }

  /** The attachment this connection reads and writes through now. */
  Namespace namespace() {
    return ns;
  }

  /** {@code r}'s reply has left (or the connection is gone): free its budget, recycle it. */
  void replied(NbdRequest r) {
    budget.release(r.charge);
    r.recycle();
    budget.finished();
    budget.pump();
    budget.updateReading();
    closeIfDone();
  }

  /** Forgets a request that will not be answered (its connection is gone); frees what it held. */
  @Override
  public void abandon(NbdRequest r) {
    budget.release(r.charge);
    r.charge = 0;
    if (replies.outputOwner() == r) {
      replies.unlock();
    }
    r.releasePayload();
    r.recycle();
    budget.finished();
  }

  private void drop(NbdRequest r) {
    r.releasePayload();
    r.recycle();
  }

  private void closeIfDone() {
    if (disconnecting && budget.inFlight() == 0 && !closed) {
      channel.close();
    }
  }

  // ---------------------------------------------------------------- channel events

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
    budget.abandonWaiting();
    transfers.closed();
    replies.closed();
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
