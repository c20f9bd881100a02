package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
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
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one NBD connection. Requests run concurrently and are answered as they
 * finish, out of order; requests on overlapping pages of the export are ordered by the export's
 * {@link PageOrdering}. Errors are replies and the connection lives on; only a protocol violation
 * closes it.
 */
final class NbdSession extends ChannelInboundHandlerAdapter {
  private static final Logger LOG = LoggerFactory.getLogger(NbdSession.class);
  /** Stop reading requests above this many in flight, resume below half of it. */
  private static final int MAX_IN_FLIGHT = 512;
  private static final int MAX_EXTENTS = 65536;
  /**
   * Reads of at least this many pages are answered with the servers' reply bytes themselves (no
   * copy); smaller ones are copied into one buffer, which costs less than joining slices.
   */
  private static final int SHARED_READ_PAGES = 16;

  private final Export export;
  private final Namespace ns;
  private final boolean structured;
  private final boolean allocationContext;
  private Channel channel;
  private int inFlight;
  private boolean disconnecting;
  /** Whether this read burst opened the loop's flush batch (closed in channelReadComplete). */
  private boolean batching;

  NbdSession(Export export, boolean structured, boolean allocationContext) {
    this.export = export;
    this.ns = export.namespace;
    this.structured = structured;
    this.allocationContext = allocationContext;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    channel = ctx.channel();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    NbdRequest r = (NbdRequest) msg;
    if (disconnecting) {
      r.releasePayload();
      r.recycle();
      return;
    }
    if (!batching) {
      // The burst's requests go out to the servers (and its quick replies back) with one flush each.
      batching = true;
      FlushBatch.current().open();
    }
    if (++inFlight >= MAX_IN_FLIGHT) {
      channel.config().setAutoRead(false);
    }
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
    if (export.readOnly() && (r.type == Nbd.CMD_WRITE || r.type == Nbd.CMD_WRITE_ZEROES || r.type == Nbd.CMD_TRIM)) {
      readOnly(r);
      return;
    }
    switch (r.type) {
      case Nbd.CMD_READ:
        if (r.length > Nbd.MAX_PAYLOAD) {
          error(r, Nbd.EINVAL, "READ of " + r.length + " bytes is over the maximum of " + Nbd.MAX_PAYLOAD);
        } else if (pastEnd) {
          error(r, Nbd.EINVAL, "READ past the end of the export");
        } else {
          read(r);
        }
        break;
      case Nbd.CMD_WRITE:
        if (pastEnd) {
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
      case Nbd.CMD_DISC:
        disconnecting = true;
        finished(r);
        break;
      default:
        error(r, Nbd.EINVAL, "unknown command " + r.type);
    }
  }

  // ---------------------------------------------------------------- commands

  private static long firstPage(NbdRequest r) {
    return r.offset >>> Pages.PAGE_SHIFT;
  }

  private static long lastPage(NbdRequest r) {
    return (r.offset + r.length - 1) >>> Pages.PAGE_SHIFT;
  }

  private void read(NbdRequest r) {
    if (r.length == 0) {
      ok(r);
      return;
    }
    long first = firstPage(r);
    export.ordering.enter(r, first, lastPage(r), false);
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

  /** Starts a READ or WRITE whose turn has come; its cluster I/O ends in {@link #ioDone}. */
  private void start(NbdRequest r) {
    long first = firstPage(r);
    int pages = (int) (lastPage(r) - first + 1);
    r.session = this;
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

  /** A READ's or WRITE's cluster I/O has finished: release its pages in the order and answer. */
  void ioDone(NbdRequest r, VmdException err) {
    export.ordering.release(r);
    long pages = lastPage(r) - firstPage(r) + 1;
    ByteBuf buf = r.buffer;
    r.buffer = null;
    try {
      if (r.type == Nbd.CMD_READ) {
        if (err != null) {
          if (buf != null) {
            buf.release();
          }
          failed(r, err);
          return;
        }
        export.metrics.read(pages, r.length);
        int from = (int) (r.offset & (Pages.PAGE_SIZE - 1));
        buf.readerIndex(from).writerIndex(from + (int) r.length);
        replyData(r, buf);
      } else {
        if (buf != null) {
          buf.release();
        }
        r.releasePayload();
        if (err != null) {
          failed(r, err);
        } else {
          export.metrics.written(pages, r.length);
          ok(r);
        }
      }
    } catch (RuntimeException e) {
      LOG.error("failed to answer {} on export '{}'", Nbd.commandName(r.type), export.name(), e);
      channel.close();
    }
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
    if (channel.eventLoop().inEventLoop()) {
      // On the loop nothing can come between the two writes: no composite buffer needed.
      channel.write(header, channel.voidPromise());
      send(r, data);
    } else {
      CompositeByteBuf reply = channel.alloc().compositeDirectBuffer(2);
      reply.addComponents(true, header, data);
      send(r, reply);
    }
  }

  /** A write to an export another owner writes: EPERM, as the NBD spec asks of a read-only export. */
  private void readOnly(NbdRequest r) {
    error(r, Nbd.EPERM, Nbd.commandName(r.type) + " to export '" + export.name()
        + "', which is read-only here: another gateway or client owns it");
  }

  private void failed(NbdRequest r, Throwable err) {
    VmdException v = VmdException.from(err);
    int errno;
    switch (v.code()) {
      case READ_ONLY:
        errno = Nbd.EPERM;
        break;
      case NO_SPACE:
        errno = Nbd.ENOSPC;
        break;
      case BAD_REQUEST:
        errno = Nbd.EINVAL;
        break;
      default:
        errno = Nbd.EIO;
    }
    LOG.warn("{} at {} (+{}) on export '{}' failed: {}", Nbd.commandName(r.type), r.offset, r.length,
        export.name(), v.getMessage());
    error(r, errno, v.getMessage());
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

  private void send(NbdRequest r, ByteBuf reply) {
    // A failed write surfaces as exceptionCaught and closes the connection; no promise per reply.
    FlushBatch.writeAndFlush(channel, reply);
    export.metrics.latency(r.type, r.startNanos);
    finished(r);
  }

  /** Bookkeeping on the event loop once a request is answered (or a DISC received). */
  private void finished(NbdRequest r) {
    r.recycle();
    if (channel.eventLoop().inEventLoop()) {
      afterRequest();
    } else {
      channel.eventLoop().execute(this::afterRequest);
    }
  }

  private void afterRequest() {
    inFlight--;
    if (!channel.config().isAutoRead() && inFlight < MAX_IN_FLIGHT / 2 && !disconnecting) {
      channel.config().setAutoRead(true);
    }
    if (disconnecting && inFlight == 0) {
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
      export.ordering.release(r);
      if (r.buffer != null) {
        r.buffer.release();
        r.buffer = null;
      }
      LOG.error("failed to serve {} on export '{}'", Nbd.commandName(r.type), export.name(), ex);
      error(r, Nbd.EIO, "gateway error: " + ex);
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
