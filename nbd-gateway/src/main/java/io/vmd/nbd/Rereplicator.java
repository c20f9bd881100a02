package io.vmd.nbd;

import io.vmd.client.LocationTable;
import io.vmd.client.Namespace;
import io.vmd.client.ServerState;
import io.vmd.client.VmdClient;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gives back their replica count to pages that lost a copy with a server. Every second it scans the
 * open exports' location tables; once a server has been down for the grace period (a blip is not worth
 * copying gigabytes for), it copies the short pages in runs, each run ordered with the export's NBD
 * requests like a write, at most {@code pagesPerSecond} pages a second so the VM's own I/O keeps the
 * link. It also keeps each export's under-replicated gauge current.
 */
final class Rereplicator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Rereplicator.class);
  private static final int RUN = 32;

  private final ExportRegistry exports;
  private final VmdClient client;
  private final long graceNanos;
  private final int pagesPerSecond;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-gateway-rereplicate");
    t.setDaemon(true);
    return t;
  });

  private final long[] comebacks;

  Rereplicator(ExportRegistry exports, VmdClient client, Duration grace, int pagesPerSecond) {
    this.exports = exports;
    this.client = client;
    this.graceNanos = grace.toNanos();
    this.pagesPerSecond = pagesPerSecond;
    this.comebacks = new long[client.servers().length];
    for (int i = 0; i < comebacks.length; i++) {
      comebacks[i] = client.servers()[i].comebacks();
    }
  }

  Rereplicator start() {
    timer.scheduleWithFixedDelay(this::tick, 1, 1, TimeUnit.SECONDS);
    return this;
  }

  private void tick() {
    try {
      for (ServerState s : client.servers()) {
        long c = s.comebacks();
        if (c != comebacks[s.index()] && s.up()) {
          comebacks[s.index()] = c;
          for (Export e : exports.openExports()) {
            rejoin(e, s.index());
          }
        }
      }
      // Copy once a server has been down past the grace period, or when every server is up (then the
      // short pages lost a copy to a server that came back empty): never during a short outage.
      boolean anyDown = false;
      boolean longDown = false;
      for (ServerState s : client.servers()) {
        anyDown |= !s.up();
        longDown |= s.downForNanos() > graceNanos;
      }
      boolean copy = longDown || !anyDown;
      for (Export e : exports.openExports()) {
        pass(e, copy);
      }
    } catch (RuntimeException | InterruptedException e) {
      LOG.warn("re-replication pass failed: {}", e.toString());
    }
  }

  /**
   * One scan of an export: counts the pages short of copies (the gauge), then, when {@code copy},
   * copies up to a second's budget of them, lowering the gauge as runs complete.
   */
  int pass(Export e, boolean copy) throws InterruptedException {
    Namespace ns = e.namespace;
    LocationTable t = ns.locations();
    int replicas = t.replicas();
    java.util.List<long[]> runs = new java.util.ArrayList<>();
    long shortPages = 0;
    long page = 0;
    while (page < ns.pages()) {
      if (!t.stored(page) || ns.liveCopies(page) >= replicas) {
        page++;
        continue;
      }
      long first = page;
      while (page < ns.pages() && page - first < RUN && t.stored(page) && ns.liveCopies(page) < replicas) {
        page++;
      }
      runs.add(new long[] {first, page - first});
      shortPages += page - first;
    }
    e.metrics.underReplicated(shortPages);
    int budget = copy ? pagesPerSecond : 0;
    int copied = 0;
    for (long[] run : runs) {
      int n = (int) run[1];
      if (budget < n) {
        break;
      }
      budget -= n;
      copied += copyRun(e, run[0], n);
      e.metrics.underReplicated(shortPages - copied);
    }
    if (copied > 0) {
      LOG.info("export '{}': {} pages were short of copies, {} copied", e.name(), shortPages, copied);
    }
    return copied;
  }

  /**
   * A server came back: it learns the namespace again (with the current epoch), copies the table
   * places there but it lacks are forgotten (re-replication restores them), and copies it holds that
   * the table no longer places there (rewritten elsewhere meanwhile) are deleted from it.
   */
  private void rejoin(Export e, int server) throws InterruptedException {
    Namespace ns = e.namespace;
    try {
      long[] held = client.rejoin(server, ns.record());
      long stale = 0;
      for (long first = 0; first < ns.pages(); first += 4096) {
        long n = Math.min(4096, ns.pages() - first);
        PageOrdering.Entry entry = e.ordering.enter(first, first + n - 1, true);
        try {
          if (entry.ready != null) {
            entry.ready.get(30, TimeUnit.SECONDS);
          }
          stale += ns.reconcile(server, held, first, n).get(30, TimeUnit.SECONDS);
        } finally {
          e.ordering.release(entry);
        }
      }
      LOG.info("server {} rejoined export '{}': {} stale page copies deleted", client.servers()[server].address(),
          e.name(), stale);
    } catch (io.vmd.client.VmdException | java.util.concurrent.ExecutionException
        | java.util.concurrent.TimeoutException ex) {
      LOG.warn("server {} rejoining export '{}': {}", client.servers()[server].address(), e.name(), ex.toString());
    }
  }

  private int copyRun(Export e, long first, int n) throws InterruptedException {
    PageOrdering.Entry entry = e.ordering.enter(first, first + n - 1, true);
    try {
      if (entry.ready != null) {
        // A write of these pages is still running (it may be waiting for a server): next pass.
        try {
          entry.ready.get(2, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException busy) {
          return 0;
        }
      }
      int made = e.namespace.rereplicate(first, n).get(30, TimeUnit.SECONDS);
      e.metrics.rereplicated(made);
      return made > 0 ? n : 0;
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException ex) {
      LOG.warn("re-replicating pages {}..{} of '{}' failed: {}", first, first + n - 1, e.name(), ex.toString());
      return 0;
    } finally {
      e.ordering.release(entry);
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
