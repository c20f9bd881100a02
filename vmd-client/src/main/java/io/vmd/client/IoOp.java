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
      completed(e);
      recycle();
      cb.ioDone(e);
    }
  }

  /** Runs once, before the callback: release or publish what the operation held. */
  abstract void completed(VmdException error);

  /** Returns this object to its pool. */
  abstract void recycle();

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
