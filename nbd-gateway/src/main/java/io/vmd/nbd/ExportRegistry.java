package io.vmd.nbd;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.client.Namespace;
import io.vmd.client.Repairer;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.NamespaceRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The gateway's view of the namespaces: lists and describes them for negotiation, and attaches each
 * one at most once at a time (every connection of this gateway shares the attachment: one location
 * table, one page ordering). Opening claims the namespace: the gateway writes it when nobody else
 * holds a live lease on it (a lone gateway, or one replacing a dead one); otherwise the export
 * stands by and the owner keeps writing. A standing-by export claims again when a connection opens it
 * and when a client writes to it, so it becomes writable once the owner is gone or has handed the
 * namespace over (a migration's switch-over), without the client reconnecting. The cluster calls
 * block, so they run on one admin thread, never on an event loop.
 */
final class ExportRegistry implements AutoCloseable {
  private final VmdClient client;
  private final MeterRegistry meters;
  private final ExecutorService admin = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "vmd-gateway-admin");
    t.setDaemon(true);
    return t;
  });
  private final ConcurrentHashMap<String, CompletableFuture<Export>> open = new ConcurrentHashMap<>();

  private final Repairer repairer;

  ExportRegistry(VmdClient client, MeterRegistry meters, Repairer repairer) {
    this.client = client;
    this.meters = meters;
    this.repairer = repairer;
  }

  /** A new attachment: the repairer keeps it whole while this gateway writes it. */
  private Export track(Export e) {
    if (e.namespace.writable()) {
      repairer.track(e.namespace, e.repairLock, e.metrics);
    }
    return e;
  }

  CompletableFuture<List<NamespaceRecord>> list() {
    return CompletableFuture.supplyAsync(
        () -> call(() -> client.namespaces().list().stream().map(NamespaceMeta::record).toList()), admin);
  }

  /** The namespace without attaching it (for NBD_OPT_INFO). */
  CompletableFuture<NamespaceRecord> describe(String name) {
    Export attached = peek(name);
    if (attached != null) {
      return CompletableFuture.completedFuture(attached.namespace.record());
    }
    return CompletableFuture.supplyAsync(() -> call(() -> client.namespaces().ownership(name).namespace().record()), admin);
  }

  /**
   * The export for the namespace, attaching it on first use. A new export claims the namespace: it
   * writes when nobody else holds a live lease, else it stands by. Opening an export that stands by
   * (or was fenced) claims again, so a client connecting after the owner left writes at once.
   */
  CompletableFuture<Export> open(String name) {
    CompletableFuture<Export> f = open.computeIfAbsent(name, n -> CompletableFuture.supplyAsync(() -> {
      Namespace ns = call(() -> client.attach(n, VmdClient.Access.CLAIM));
      return track(new Export(ns, new ExportMetrics(meters, n), this::claim));
    }, admin));
    // A failed attach is not cached: the next connection tries again.
    f.whenComplete((e, err) -> {
      if (err != null) {
        open.remove(name, f);
      }
    });
    return f.thenCompose(e -> e.namespace.writable() ? CompletableFuture.completedFuture(e)
        : claim(e, false).handle((ns, err) -> e));
  }

  /** Claims in flight, by export; and when the last refused one was answered. */
  private final ConcurrentHashMap<Export, CompletableFuture<Namespace>> claims = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<Export, Long> refusedAt = new ConcurrentHashMap<>();
  /** A refused claim is not asked again for this long: the writes waiting meanwhile ask again after it. */
  private static final long CLAIM_BACKOFF_NANOS = 500_000_000L;

  /**
   * Asks the control plane for the export's namespace (see {@link Export#claim}). Granted: a fresh
   * attachment (its location table rebuilt from the servers, which the other owner wrote) replaces
   * the standing-by one, and the repairer keeps it whole. Refused: the export keeps standing by; an
   * export whose attachment was fenced gets a standing-by one for the connections still to come.
   * While another owner's lease runs, one read of the control plane answers: nothing is attached.
   */
  private CompletableFuture<Namespace> claim(Export e) {
    return claim(e, true);
  }

  /** {@code forWrite}: a refusal holds the writes that follow back for a moment (an open's does not). */
  private CompletableFuture<Namespace> claim(Export e, boolean forWrite) {
    Namespace cur = e.namespace;
    if (cur.writable()) {
      return CompletableFuture.completedFuture(cur);
    }
    Long refused = refusedAt.get(e);
    if (refused != null && System.nanoTime() - refused < CLAIM_BACKOFF_NANOS) {
      return CompletableFuture.completedFuture(cur);
    }
    return claims.computeIfAbsent(e, x -> {
      CompletableFuture<Namespace> f = CompletableFuture.supplyAsync(() -> {
        Namespace before = e.namespace;
        if (before.writable()) {
          return before;
        }
        if (!call(() -> client.namespaces().ownership(e.name())).ownedByAnother()) {
          Namespace ns = call(() -> client.attach(e.name(), VmdClient.Access.CLAIM));
          if (ns.writable()) {
            refusedAt.remove(e);
            e.namespace = ns;
            repairer.untrack(before);
            before.release();
            track(e);
            return ns;
          }
          // Another claimant came first: this attachment is not kept.
          ns.release();
        }
        if (forWrite) {
          refusedAt.put(e, System.nanoTime());
        }
        if (before.fenced()) {
          Namespace standby = call(() -> client.attach(e.name(), VmdClient.Access.READ));
          e.namespace = standby;
          repairer.untrack(before);
          before.release();
          return standby;
        }
        return before;
      }, admin);
      f.whenComplete((ns, err) -> claims.remove(e));
      return f;
    });
  }

  /** Every export attached so far. */
  List<Export> openExports() {
    List<Export> all = new ArrayList<>();
    for (CompletableFuture<Export> f : open.values()) {
      if (f.isDone() && !f.isCompletedExceptionally()) {
        all.add(f.join());
      }
    }
    return all;
  }

  /** The export if it is already open, else null; never attaches. */
  Export peek(String name) {
    CompletableFuture<Export> f = open.get(name);
    return f != null && f.isDone() && !f.isCompletedExceptionally() ? f.join() : null;
  }

  interface Call<T> {
    T run() throws VmdException;
  }

  private static <T> T call(Call<T> c) {
    try {
      return c.run();
    } catch (VmdException e) {
      throw new CompletionException(e);
    }
  }

  /** Gives up every export (ownership goes back to the control plane at once). */
  @Override
  public void close() {
    admin.shutdownNow();
    for (Export e : openExports()) {
      repairer.untrack(e.namespace);
      e.namespace.release();
    }
  }
}
