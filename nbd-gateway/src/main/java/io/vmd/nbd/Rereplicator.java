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

  Rereplicator(ExportRegistry exports, VmdClient client, Duration grace, int pagesPerSecond) {
    this.exports = exports;
    this.client = client;
    this.graceNanos = grace.toNanos();
    this.pagesPerSecond = pagesPerSecond;
  }

  Rereplicator start() {
    timer.scheduleWithFixedDelay(this::tick, 1, 1, TimeUnit.SECONDS);
    return this;
  }

  private void tick() {
    try {
      boolean copy = false;
      for (ServerState s : client.servers()) {
        copy |= s.downForNanos() > graceNanos;
      }
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

  private int copyRun(Export e, long first, int n) throws InterruptedException {
    PageOrdering.Entry entry = e.ordering.enter(first, first + n - 1, true);
    try {
      if (entry.ready != null) {
        entry.ready.get(30, TimeUnit.SECONDS);
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
