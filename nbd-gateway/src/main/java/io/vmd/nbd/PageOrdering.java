package io.vmd.nbd;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Orders requests that touch the same pages of one export, across all its connections: a request
 * starts only after every earlier request whose page range overlaps its own has finished, unless both
 * only read. This is what makes sub-page writes (read-modify-write) safe under concurrency, and what
 * lets a read on one connection see a write acknowledged on another (CAN_MULTI_CONN). Requests on
 * different pages run in parallel. A request that waits for nobody allocates no future: the common
 * case costs one small entry.
 */
final class PageOrdering {
  private final List<Entry> active = new ArrayList<>();

  /** A request's place in the order; {@link #release} it when the request has finished. */
  static class Entry {
    long first;
    long last;
    boolean write;
    /** Completed at release; created only when a later request has to wait for this one. */
    private CompletableFuture<Void> done;
    /** When this request may run; null when it may run at once. */
    CompletableFuture<Void> ready;
    /** In the order now: a second release of a pooled entry must not remove its next use. */
    private boolean entered;

    /** Clears the order state before a pooled entry is reused. */
    final void resetOrder() {
      done = null;
      ready = null;
    }
  }

  /** A standalone entry on pages [first, last]. */
  Entry enter(long first, long last, boolean write) {
    return enter(new Entry(), first, last, write);
  }

  /** Registers {@code e} on pages [first, last]; it may run when {@code e.ready} is null or completes. */
  Entry enter(Entry e, long first, long last, boolean write) {
    e.first = first;
    e.last = last;
    e.write = write;
    e.done = null;
    e.entered = true;
    CompletableFuture<Void> one = null;
    List<CompletableFuture<Void>> more = null;
    synchronized (active) {
      for (int i = 0, n = active.size(); i < n; i++) {
        Entry other = active.get(i);
        if ((write || other.write) && other.first <= last && first <= other.last) {
          if (other.done == null) {
            other.done = new CompletableFuture<>();
          }
          if (one == null) {
            one = other.done;
          } else {
            if (more == null) {
              more = new ArrayList<>(4);
              more.add(one);
            }
            more.add(other.done);
          }
        }
      }
      active.add(e);
    }
    e.ready = more != null ? CompletableFuture.allOf(more.toArray(new CompletableFuture<?>[0])) : one;
    return e;
  }

  /** Ends the request's turn; later requests waiting on it may run. Calling it twice is harmless. */
  void release(Entry e) {
    CompletableFuture<Void> waiters;
    synchronized (active) {
      if (!e.entered) {
        return;
      }
      e.entered = false;
      active.remove(e);
      waiters = e.done;
    }
    if (waiters != null) {
      waiters.complete(null);
    }
  }

  int active() {
    synchronized (active) {
      return active.size();
    }
  }
}
