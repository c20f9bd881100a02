package io.vmd.client;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the namespaces a client writes whole: gives back their replica count to pages that lost a
 * copy (a dead server, one removed, one draining), and brings a server that comes back in line (its
 * lost copies are made again, the stale ones it kept are deleted). Every second it scans the tracked
 * namespaces' location tables; a server merely down is given a grace period (a blip is not worth
 * copying gigabytes for), a removed or draining one is not. Copies go in runs, each run ordered with
 * the owner's own I/O on those pages through its {@link RangeLock}, at most {@code pagesPerSecond}
 * pages a second so the VM's own I/O keeps the link. Any client that owns a namespace can run one; the
 * NBD gateway does for its exports.
 */
public final class Repairer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Repairer.class);
  private static final int RUN = 32;

  /** Orders a repair run with the namespace's own reads and writes of the same pages. */
  @FunctionalInterface
  public interface RangeLock {
    /**
     * Takes pages [first, last] for a repair, waiting at most {@code waitMillis} for I/O on them to end;
     * returns what releases them, or null when they stay busy (the run is tried on a later pass).
     */
    AutoCloseable acquire(long first, long last, long waitMillis) throws InterruptedException;

    /** For a namespace whose owner does no concurrent I/O of its own (or orders it otherwise). */
    RangeLock NONE = (first, last, wait) -> () -> { };
  }

  /** What a repair pass reports of one namespace (the gateway's metrics). */
  public interface Listener {
    /** Pages with fewer copies than the replica count on servers that keep them. */
    void underReplicated(long pages);

    /** Page copies made. */
    void rereplicated(long copies);
  }

  private record Tracked(Namespace namespace, RangeLock lock, Listener listener) {}

  private final VmdClient client;
  private final long graceNanos;
  private final int pagesPerSecond;
  private final Map<Namespace, Tracked> tracked = new ConcurrentHashMap<>();
  /** Each server's comeback count when last seen, by slot: a change means it came back. */
  private final Map<Integer, Long> comebacks = new HashMap<>();
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-repair");
    t.setDaemon(true);
    return t;
  });

  public Repairer(VmdClient client, Duration grace, int pagesPerSecond) {
    this.client = client;
    this.graceNanos = grace.toNanos();
    this.pagesPerSecond = pagesPerSecond;
    for (ServerState s : client.membership().members()) {
      comebacks.put(s.index(), s.comebacks());
    }
  }

  public Repairer start() {
    timer.scheduleWithFixedDelay(this::tick, 1, 1, TimeUnit.SECONDS);
    return this;
  }

  /** For a namespace repaired on request, whose progress nobody reports. */
  private static final Listener UNWATCHED = new Listener() {
    @Override
    public void underReplicated(long pages) {
    }

    @Override
    public void rereplicated(long copies) {
    }
  };

  /** Keeps {@code ns} whole from now on (while it is writable here). */
  public void track(Namespace ns, RangeLock lock, Listener listener) {
    tracked.put(ns, new Tracked(ns, lock, listener));
  }

  public void untrack(Namespace ns) {
    tracked.remove(ns);
  }

  /**
   * Repairs {@code ns} now, to the end: copies every page short of copies (or on a draining server) in
   * passes until one copies nothing. For a namespace this client owns and does no other I/O on (the
   * CLI's drain); returns the pages copied.
   */
  public long repairNow(Namespace ns) throws InterruptedException {
    Tracked t = new Tracked(ns, RangeLock.NONE, UNWATCHED);
    long total = 0;
    for (int copied = pass(t, true); copied > 0; copied = pass(t, true)) {
      total += copied;
    }
    return total;
  }

  private void tick() {
    try {
      tracked.keySet().removeIf(ns -> !ns.writable());
      for (ServerState s : client.membership().members()) {
        long c = s.comebacks();
        Long seen = comebacks.putIfAbsent(s.index(), c);
        if (seen != null && c != seen && s.up()) {
          comebacks.put(s.index(), c);
          for (Tracked t : tracked.values()) {
            rejoin(t, s.index());
          }
        }
      }
      // Copy once a server has been down past the grace period, or when every server is up (then the
      // short pages lost a copy to a server that came back empty): never during a short outage. A
      // removed server's copies are gone for good, and a draining one's are to move: no grace for either.
      boolean anyDown = false;
      boolean longDown = false;
      for (ServerState s : client.membership().members()) {
        anyDown |= !s.up();
        longDown |= s.downForNanos() > graceNanos;
      }
      boolean copy = longDown || !anyDown || client.membership().lostServers();
      for (Tracked t : tracked.values()) {
        pass(t, copy);
      }
    } catch (RuntimeException | InterruptedException e) {
      LOG.warn("repair pass failed: {}", e.toString());
    }
  }

  /**
   * One scan of a namespace: counts the pages short of copies, then, when {@code copy}, copies up to a
   * second's budget of them, lowering the count as runs complete. Returns the pages copied.
   */
  int pass(Tracked t, boolean copy) throws InterruptedException {
    Namespace ns = t.namespace();
    LocationTable table = ns.locations();
    int replicas = table.replicas();
    List<long[]> runs = new ArrayList<>();
    long shortPages = 0;
    long page = 0;
    while (page < ns.pages()) {
      if (!table.stored(page) || ns.liveCopies(page) >= replicas) {
        page++;
        continue;
      }
      long first = page;
      while (page < ns.pages() && page - first < RUN && table.stored(page) && ns.liveCopies(page) < replicas) {
        page++;
      }
      runs.add(new long[] {first, page - first});
      shortPages += page - first;
    }
    t.listener().underReplicated(shortPages);
    int budget = copy ? pagesPerSecond : 0;
    int copied = 0;
    for (long[] run : runs) {
      int n = (int) run[1];
      if (budget < n) {
        break;
      }
      budget -= n;
      copied += copyRun(t, run[0], n);
      t.listener().underReplicated(shortPages - copied);
    }
    if (copied > 0) {
      LOG.info("namespace '{}': {} pages were short of copies, {} copied", ns.name(), shortPages, copied);
    }
    return copied;
  }

  /** As a comeback of {@code server} makes {@link #tick} do for {@code ns}: for tests that time it. */
  void rejoin(Namespace ns, int server) throws InterruptedException {
    rejoin(new Tracked(ns, RangeLock.NONE, UNWATCHED), server);
  }

  /**
   * A server came back: it catches up with the namespace, copies the table places there but it lacks
   * are forgotten (re-replication restores them), and copies it holds that the table no longer places
   * there (rewritten elsewhere meanwhile) are deleted from it.
   */
  private void rejoin(Tracked t, int server) throws InterruptedException {
    Namespace ns = t.namespace();
    if (ns.unresolvedServers().contains(server)) {
      // It never listed its pages to this attachment: the table does not place them there because it
      // has not heard of them, not because they were rewritten. Merge its listing first (newest copy
      // wins, stale copies are deleted by stamp); deleting "unplaced" copies now would delete the only
      // ones. Still silent: the next comeback (or the late-server poll) tries again.
      ns.resolveLate();
      if (ns.unresolvedServers().contains(server)) {
        return;
      }
    }
    try {
      long[] held = client.rejoin(server, ns.record());
      long stale = 0;
      for (long first = 0; first < ns.pages(); first += 4096) {
        long n = Math.min(4096, ns.pages() - first);
        AutoCloseable range = t.lock().acquire(first, first + n - 1, 30_000);
        if (range == null) {
          LOG.warn("server {} rejoining '{}': pages {}.. stayed busy", client.describe(server), ns.name(), first);
          return;
        }
        try (range) {
          stale += ns.reconcile(server, held, first, n).get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          throw e;
        } catch (Exception e) {
          throw new ExecutionException(e);
        }
      }
      LOG.info("server {} rejoined '{}': {} stale page copies deleted", client.describe(server), ns.name(), stale);
    } catch (VmdException | ExecutionException e) {
      LOG.warn("server {} rejoining '{}': {}", client.describe(server), ns.name(), e.toString());
    }
  }

  private int copyRun(Tracked t, long first, int n) throws InterruptedException {
    // A write of these pages still running (it may be waiting for a server): leave them to the next pass.
    AutoCloseable range = t.lock().acquire(first, first + n - 1, 2_000);
    if (range == null) {
      return 0;
    }
    try (range) {
      int made = t.namespace().rereplicate(first, n).get(30, TimeUnit.SECONDS);
      t.listener().rereplicated(made);
      return made > 0 ? n : 0;
    } catch (ExecutionException | TimeoutException e) {
      LOG.warn("re-replicating pages {}..{} of '{}' failed: {}", first, first + n - 1, t.namespace().name(),
          e.toString());
      return 0;
    } catch (InterruptedException e) {
      throw e;
    } catch (Exception e) {
      LOG.warn("releasing pages {}..{} of '{}': {}", first, first + n - 1, t.namespace().name(), e.toString());
      return 0;
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
