package io.vmd.client;

import io.netty.buffer.ByteBuf;

/**
 * A request waiting for its reply. One object per frame sent (never per page); subclasses carry what
 * the reply needs (where to copy pages, which operation to count down).
 */
abstract class Pending {
  long deadlineNanos;
  /**
   * Moves on each time a pooled request goes back to its pool ({@link #retire}): whoever delivered
   * to it sees the change and knows the object is no longer the request it delivered to.
   */
  int generation;

  /** Call just before returning a pooled request to its pool. */
  final void retire() {
    generation++;
  }

  /** The reply (or, for LIST, one of several). The frame is released by the caller afterwards. */
  abstract void onReply(ByteBuf frame);

  /** The request failed without a reply: connection lost, server down, or timed out. */
  abstract void onFailure(VmdException e);

  /** LIST replies come in several frames: the request stays pending until this returns true. */
  boolean done(ByteBuf frame) {
    return true;
  }
}
