package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.vmd.client.VmdException;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster I/O of one connection's READs and WRITEs, whole or a piece at a time: each waits for
 * its turn in the export's page order, runs against the session's current attachment and is answered
 * through the {@link ReplyWriter}. A long READ reads and sends one {@link NbdSession#PIECE} at a time,
 * each piece asking the budget for its bytes; a long WRITE writes each piece of its payload as it
 * arrives and is answered when the last has been stored. Runs on the connection's event loop;
 * completions from the cluster are brought back to it.
 */
final class PageTransfers {
  private static final Logger LOG = LoggerFactory.getLogger(PageTransfers.class);
  /**
   * Reads of at least this many pages are answered with the servers' reply bytes themselves (no
   * copy); smaller ones are copied into one buffer, which costs less than joining slices.
   */
  private static final int SHARED_READ_PAGES = 16;

  private final NbdSession session;
  private final Export export;
  private final Channel channel;
  private final EventLoop loop;
  private final ConnectionBudget budget;
  private final ReplyWriter replies;
  private final boolean structured;
  /** The WRITE whose payload pieces are arriving, or null. */
  private NbdRequest streaming;

  PageTransfers(NbdSession session, Export export, Channel channel, ConnectionBudget budget, ReplyWriter replies) {
    this.session = session;
    this.export = export;
    this.channel = channel;
    this.loop = channel.eventLoop();
    this.budget = budget;
    this.replies = replies;
    this.structured = replies.structured();
  }

  /** A READ or WRITE (or a long READ's next piece) with a payload at hand: ordered, then run. */
  void transfer(NbdRequest r, boolean writes) {
    export.ordering.enter(r, r.firstPage(), r.lastPage(), writes);
    whenReady(r);
  }

  /** A long WRITE: its payload follows as pieces (see {@link #piece}); its errno, if set, answers it. */
  void stream(NbdRequest r) {
    streaming = r;
  }

  /** The connection is gone: a WRITE whose payload was arriving is answered with what it has. */
  void closed() {
    NbdRequest s = streaming;
    if (s != null) {
      streaming = null;
      s.remaining = 0;
      if (s.errno == 0) {
        s.errno = NbdProtocol.ESHUTDOWN;
        s.message = "connection closed before the payload came";
      }
      finishStream(s);
    }
  }

  /** Starts a READ or WRITE (or a piece of a long one) now, or when the requests it overlaps have finished. */
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
      LOG.error("failed to serve {} on export '{}'", NbdProtocol.commandName(r.type), export.name(), ex);
      if (r.buffer != null) {
        r.buffer.release();
        r.buffer = null;
      }
      ioDone(r, new VmdException(ErrorCode.INTERNAL, "gateway error: " + ex, ex));
    }
  }

  /** Its turn has come: the cluster I/O, which ends in {@link #ioDone}. */
  private void start(NbdRequest r) {
    long first = r.firstPage();
    int pages = (int) (r.lastPage() - first + 1);
    if (r.type == NbdProtocol.CMD_READ && pages >= SHARED_READ_PAGES) {
      session.namespace().readShared(first, pages, channel.alloc(), r);
    } else if (r.type == NbdProtocol.CMD_READ) {
      r.buffer = channel.alloc().directBuffer(pages * Pages.PAGE_SIZE);
      session.namespace().read(first, pages, r.buffer, r);
    } else if ((r.offset & (Pages.PAGE_SIZE - 1)) == 0 && (r.length & (Pages.PAGE_SIZE - 1)) == 0) {
      session.namespace().write(first, pages, r.payload, r);
    } else {
      ByteBuf merged = channel.alloc().directBuffer(pages * Pages.PAGE_SIZE);
      r.buffer = merged;
      PartialPages.readModifyWrite(session.namespace(), first, pages, r.offset, r.payload, merged).whenComplete((v, err) ->
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
      } catch (RejectedExecutionException e) {
        // the gateway is shutting down: nothing left to answer to
      }
      return;
    }
    export.ordering.release(r);
    ByteBuf buf = r.buffer;
    r.buffer = null;
    try {
      if (r.type == NbdProtocol.CMD_READ) {
        readDone(r, buf, err);
        return;
      }
      if (buf != null) {
        buf.release();
      }
      if (r.type == NbdRequest.PIECE) {
        pieceDone(r, err);
      } else {
        writeDone(r, err);
      }
    } catch (RuntimeException e) {
      LOG.error("failed to answer {} on export '{}'", NbdProtocol.commandName(r.type), export.name(), e);
      channel.close();
    }
  }

  private void readDone(NbdRequest r, ByteBuf buf, VmdException err) {
    if (err != null) {
      if (buf != null) {
        buf.release();
      }
      if (r.sent > 0 && !structured) {
        brokenReply(r, err);
      } else {
        session.failed(r, err);
      }
      return;
    }
    long n = r.span();
    export.metrics.read(r.lastPage() - r.firstPage() + 1, n);
    int skip = (int) (r.at() & (Pages.PAGE_SIZE - 1));
    buf.readerIndex(skip).writerIndex(skip + (int) n);
    if (r.chunked()) {
      replies.piece(r, buf, r.at(), n);
    } else {
      replies.data(r, buf);
    }
  }

  private void writeDone(NbdRequest r, VmdException err) {
    r.releasePayload();
    if (err != null) {
      session.failed(r, err);
    } else {
      export.metrics.written(r.lastPage() - r.firstPage() + 1, r.length);
      replies.ok(r);
    }
  }

  /** One piece of the payload of the WRITE being streamed: charged (its bytes are here) and written. */
  void piece(NbdRequest p) {
    NbdRequest parent = streaming;
    if (parent == null) {
      // A piece of a WRITE that came after NBD_CMD_DISC: not served.
      p.releasePayload();
      p.recycle();
      return;
    }
    p.session = session;
    p.parent = parent;
    parent.remaining -= p.length;
    if (parent.remaining == 0) {
      streaming = null;
    }
    budget.chargeNow(p, p.length);
    if (parent.errno != 0 || session.closed()) {
      p.releasePayload();
      budget.release(p.charge);
      p.recycle();
    } else {
      parent.outstanding++;
      export.ordering.enter(p, p.firstPage(), p.lastPage(), true);
      whenReady(p);
    }
    if (parent.remaining == 0) {
      finishStream(parent);
    }
    budget.updateReading();
  }

  private void pieceDone(NbdRequest p, VmdException err) {
    NbdRequest parent = p.parent;
    p.releasePayload();
    if (err != null) {
      if (parent.errno == 0) {
        parent.errno = NbdSession.errno(err);
        parent.message = err.getMessage();
        LOG.warn("WRITE at {} (+{}) on export '{}' failed: {}", parent.offset, parent.length, export.name(),
            err.getMessage());
      }
    } else {
      export.metrics.written(p.lastPage() - p.firstPage() + 1, p.length);
    }
    parent.outstanding--;
    long charge = p.charge;
    p.recycle();
    finishStream(parent);
    budget.release(charge);
    budget.pump();
    budget.updateReading();
  }

  /** Answers a streamed WRITE once all its payload came and every piece has been written. */
  void finishStream(NbdRequest parent) {
    if (parent.remaining == 0 && parent.outstanding == 0) {
      if (parent.errno != 0) {
        session.error(parent, parent.errno, parent.message);
      } else {
        replies.ok(parent);
      }
    }
  }

  /** A long READ's piece has left: its budget is free; the next piece waits for its own. */
  void pieceSent(NbdRequest r) {
    budget.release(r.charge);
    r.charge = 0;
    if (session.closed()) {
      session.abandon(r);
    } else {
      budget.queueFirst(r);
    }
    budget.pump();
    budget.updateReading();
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
    session.abandon(r);
  }
}
