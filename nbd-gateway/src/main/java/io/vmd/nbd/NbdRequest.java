package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.util.Recycler;
import io.vmd.client.IoCallback;
import io.vmd.client.Namespace;
import io.vmd.client.VmdException;

/**
 * One transmission request, pooled: it is also the request's place in the export's page order and the
 * completion callback of its cluster I/O, so serving a 4 KiB read or write allocates no object of
 * its own. A WRITE carries its payload as a retained slice of the inbound bytes.
 */
final class NbdRequest extends PageOrdering.Entry implements IoCallback, Namespace.PagesCallback {
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
    return r;
  }

  /** Releases the WRITE payload once, whichever path gets here first (it is a recycled slice). */
  void releasePayload() {
    if (!released && payload != null) {
      released = true;
      payload.release();
    }
  }

  @Override
  public void ioDone(VmdException error) {
    session.ioDone(this, error);
  }

  @Override
  public void pagesRead(ByteBuf pages, VmdException error) {
    buffer = pages;
    session.ioDone(this, error);
  }

  /** Back to the pool once answered; a second call (an error path after the reply) is ignored. */
  void recycle() {
    if (live) {
      live = false;
      payload = null;
      buffer = null;
      session = null;
      resetOrder();
      handle.recycle(this);
    }
  }
}
