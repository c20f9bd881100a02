package io.vmd.client;

/**
 * Completion of one asynchronous page operation: {@code error} is null on success. The allocation-free
 * alternative to the {@code CompletableFuture} methods; runs on whichever thread finished the
 * operation (an event loop, usually), so it must not block.
 */
@FunctionalInterface
public interface IoCallback {
  void ioDone(VmdException error);
}
