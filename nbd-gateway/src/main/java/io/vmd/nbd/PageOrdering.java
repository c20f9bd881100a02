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
  static final class Entry {
    final long first;
    final long last;
    final boolean write;
    /** Completed at release; created only when a later request has to wait for this one. */
    private CompletableFuture<Void> done;
    /** When this request may run; null when it may run at once. */
    CompletableFuture<Void> ready;

    Entry(long first, long last, boolean write) {
      this.first = first;
      this.last = last;
      this.write = write;
    }
  }

  /** Registers a request on pages [first, last]; it may run when {@code ready} is null or completes. */
  Entry enter(long first, long last, boolean write) {
    Entry e = new Entry(first, last, write);
    CompletableFuture<Void> one = null;
    List<CompletableFuture<Void>> more = null;
    synchronized (active) {
      for (Entry other : active) {
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
