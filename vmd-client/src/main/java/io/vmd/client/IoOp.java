package io.vmd.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One caller-visible operation split into several frames. Starts with one extra count held by the
 * dispatching thread, so the future cannot complete before every frame has been sent.
 */
class IoOp extends CompletableFuture<Void> {
  private final AtomicInteger outstanding = new AtomicInteger(1);
  private volatile VmdException error;

  final void begin() {
    outstanding.incrementAndGet();
  }

  final void fail(VmdException e) {
    if (error == null) {
      error = e;
    }
    finish();
  }

  final void finish() {
    if (outstanding.decrementAndGet() == 0) {
      VmdException e = error;
      if (e == null) {
        succeeded();
        complete(null);
      } else {
        failed();
        completeExceptionally(e);
      }
    }
  }

  /** Hook run once before a successful completion. */
  void succeeded() {}

  /** Hook run once before a failed completion. */
  void failed() {}
}
