package io.vmd.nbd;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Orders requests that touch the same pages of one export, across all its connections: a request
 * starts only after every earlier request whose page range overlaps its own has finished, unless both
 * only read. This is what makes sub-page writes (read-modify-write) safe under concurrency, and what
 * lets a read on one connection see a write acknowledged on another (CAN_MULTI_CONN). Requests on
 * different pages run in parallel.
 */
final class PageOrdering {
  private final List<Entry> active = new ArrayList<>();

  /** A request's place in the order; {@link #release} it when the request has finished. */
  static final class Entry {
    final long first;
    final long last;
    final boolean write;
    final CompletableFuture<Void> done = new CompletableFuture<>();
    CompletableFuture<Void> ready;

    Entry(long first, long last, boolean write) {
      this.first = first;
      this.last = last;
      this.write = write;
    }
  }

  /** Registers a request on pages [first, last]; its {@code ready} future completes when it may run. */
  Entry enter(long first, long last, boolean write) {
    Entry e = new Entry(first, last, write);
    List<CompletableFuture<Void>> before = null;
    synchronized (active) {
      for (Entry other : active) {
        if ((write || other.write) && other.first <= last && first <= other.last) {
          if (before == null) {
            before = new ArrayList<>(2);
          }
          before.add(other.done);
        }
      }
      active.add(e);
    }
    e.ready = before == null
        ? CompletableFuture.completedFuture(null)
        : before.size() == 1 ? before.get(0) : CompletableFuture.allOf(before.toArray(new CompletableFuture<?>[0]));
    return e;
  }

  void release(Entry e) {
    synchronized (active) {
      active.remove(e);
    }
    e.done.complete(null);
  }

  int active() {
    synchronized (active) {
      return active.size();
    }
  }
}
