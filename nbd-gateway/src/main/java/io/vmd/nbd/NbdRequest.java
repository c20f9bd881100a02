package io.vmd.nbd;

import io.netty.buffer.ByteBuf;

/** One transmission request; a WRITE carries its payload as a retained slice of the inbound bytes. */
final class NbdRequest {
  final int flags;
  final int type;
  final long handle;
  final long offset;
  final long length;
  final ByteBuf payload;
  final long startNanos = System.nanoTime();
  private boolean released;

  NbdRequest(int flags, int type, long handle, long offset, long length, ByteBuf payload) {
    this.flags = flags;
    this.type = type;
    this.handle = handle;
    this.offset = offset;
    this.length = length;
    this.payload = payload;
  }

  /** Releases the WRITE payload once, whichever path gets here first (it is a recycled slice). */
  void releasePayload() {
    if (!released && payload != null) {
      released = true;
      payload.release();
    }
  }
}
