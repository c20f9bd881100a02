package io.vmd.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;

/**
 * One caller-visible operation split into several frames. Starts with one extra count held by the
 * dispatching thread, so it cannot complete before every frame has been sent. Subclasses are
 * recycled: once {@link #finish} reaches zero the object goes back to its pool before the callback
 * runs, so nothing may touch it afterwards.
 */
abstract class IoOp {
  private static final AtomicIntegerFieldUpdater<IoOp> OUTSTANDING =
      AtomicIntegerFieldUpdater.newUpdater(IoOp.class, "outstanding");

  private volatile int outstanding;
  private volatile VmdException error;
  private IoCallback callback;

  final void start(IoCallback cb) {
    callback = cb;
    error = null;
    outstanding = 1;
  }

  final void begin() {
    OUTSTANDING.incrementAndGet(this);
  }

  final void fail(VmdException e) {
    if (error == null) {
      error = e;
    }
    finish();
  }

  final void finish() {
    if (OUTSTANDING.decrementAndGet(this) == 0) {
      VmdException e = error;
      IoCallback cb = callback;
      callback = null;
      error = null;
      done(e, cb);
    }
  }

  /**
   * Runs once: releases or publishes what the operation held, returns this object to its pool and
   * then tells {@code cb} (or another callback the subclass keeps). Nothing may touch this object
   * after it went back to its pool.
   */
  abstract void done(VmdException error, IoCallback cb);

  /** A callback that completes a future: what the {@code CompletableFuture} methods return. */
  static final class Future extends CompletableFuture<Void> implements IoCallback {
    @Override
    public void ioDone(VmdException error) {
      if (error == null) {
        complete(null);
      } else {
        completeExceptionally(error);
      }
    }
  }
}
