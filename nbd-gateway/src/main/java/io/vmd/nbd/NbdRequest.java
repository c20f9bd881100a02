package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.util.Recycler;
import io.vmd.client.IoCallback;
import io.vmd.client.Namespace;
import io.vmd.client.VmdException;
import io.vmd.protocol.Pages;

/**
 * One transmission request, pooled: it is also the request's place in the export's page order, the
 * completion callback of its cluster I/O, the task that brings that completion back to the
 * connection's event loop and the listener of its reply's write, so serving a 4 KiB read or write
 * allocates no object of its own beyond the reply's promise. A WRITE carries its payload as a retained
 * slice of the inbound bytes; a WRITE longer than one {@link NbdSession#PIECE} arrives as a header
 * ({@link #streamed}) followed by {@link #PIECE} requests, each one piece of its payload.
 */
final class NbdRequest extends PageOrdering.Entry
    implements IoCallback, Namespace.PagesCallback, Runnable {
  /** Type of one piece of a streamed WRITE's payload (not an NBD command). */
  static final int PIECE = -1;

  private static final Recycler<NbdRequest> POOL = new Recycler<NbdRequest>() {
    @Override
    protected NbdRequest newObject(Handle<NbdRequest> handle) {
      return new NbdRequest(handle);
    }
  };

  private final Recycler.Handle<NbdRequest> handle;
  int flags;
  int type;
  long handleId;
  long offset;
  long length;
  ByteBuf payload;
  long startNanos;
  /** The session serving it, while its cluster I/O runs. */
  NbdSession session;
  /** A READ's destination, or a sub-page WRITE's merged pages. */
  ByteBuf buffer;
  /** Bytes of the connection's and the gateway's budgets this request holds until its reply is written. */
  long charge;
  /** The error its cluster I/O ended with, while the completion travels to the connection's loop. */
  VmdException error;

  // A WRITE whose payload comes in pieces.
  boolean streamed;
  /** Payload bytes of a streamed WRITE not received yet. */
  long remaining;
  /** Pieces of a streamed WRITE being written to the cluster. */
  int outstanding;
  /** The NBD error a streamed WRITE (or a chunked READ) will answer with, 0 while none. */
  int errno;
  String message;
  /** The streamed WRITE this piece belongs to. */
  NbdRequest parent;

  // A READ answered in pieces.
  /** Bytes of a chunked READ already answered. */
  long sent;

  private boolean released;
  private boolean live;

  private NbdRequest(Recycler.Handle<NbdRequest> handle) {
    this.handle = handle;
  }

  static NbdRequest of(int flags, int type, long handleId, long offset, long length, ByteBuf payload) {
    NbdRequest r = POOL.get();
    r.flags = flags;
    r.type = type;
    r.handleId = handleId;
    r.offset = offset;
    r.length = length;
    r.payload = payload;
    r.startNanos = System.nanoTime();
    r.released = false;
    r.live = true;
    r.charge = 0;
    r.error = null;
    r.streamed = false;
    r.remaining = 0;
    r.outstanding = 0;
    r.errno = 0;
    r.message = null;
    r.parent = null;
    r.sent = 0;
    return r;
  }

  /** The header of a WRITE whose {@code length} payload bytes follow as pieces. */
  static NbdRequest streamedWrite(int flags, long handleId, long offset, long length) {
    NbdRequest r = of(flags, NbdProtocol.CMD_WRITE, handleId, offset, length, null);
    r.streamed = true;
    r.remaining = length;
    return r;
  }

  /** One piece of a streamed WRITE's payload: {@code payload} goes at {@code offset}. */
  static NbdRequest piece(long offset, ByteBuf payload) {
    return of(0, PIECE, 0, offset, payload.readableBytes(), payload);
  }

  /** A READ too long to hold at once: answered in pieces, one at a time. */
  boolean chunked() {
    return type == NbdProtocol.CMD_READ && length > NbdSession.PIECE;
  }

  /** First byte of what it reads or writes now: a long READ's current piece. */
  long at() {
    return offset + sent;
  }

  /** Bytes it reads or writes now: the whole request, or a long READ's current piece. */
  long span() {
    return chunked() ? Math.min(NbdSession.PIECE, length - sent) : length;
  }

  long firstPage() {
    return at() >>> Pages.PAGE_SHIFT;
  }

  long lastPage() {
    return (at() + span() - 1) >>> Pages.PAGE_SHIFT;
  }

  /** Releases the WRITE payload once, whichever path gets here first (it is a recycled slice). */
  void releasePayload() {
    if (!released && payload != null) {
      released = true;
      payload.release();
    }
  }

  @Override
  public void ioDone(VmdException err) {
    session.ioDone(this, err);
  }

  @Override
  public void pagesRead(ByteBuf pages, VmdException err) {
    buffer = pages;
    session.ioDone(this, err);
  }

  /** The completion, brought to the connection's event loop. */
  @Override
  public void run() {
    VmdException e = error;
    error = null;
    session.ioDone(this, e);
  }

  /** Its reply has been written to the socket (or the connection is gone). */
  void sent() {
    session.replied(this);
  }

  /** Back to the pool once answered; a second call (an error path after the reply) is ignored. */
  void recycle() {
    if (live) {
      live = false;
      payload = null;
      buffer = null;
      session = null;
      parent = null;
      message = null;
      error = null;
      resetOrder();
      handle.recycle(this);
    }
  }
}
