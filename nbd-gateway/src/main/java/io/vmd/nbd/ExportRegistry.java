package io.vmd.nbd;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.protocol.NamespaceRecord;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The gateway's view of the namespaces: lists and describes them for negotiation, and attaches each
 * one at most once at a time (every connection of this gateway shares the attachment: one location
 * table, one page ordering). Opening claims the namespace: the gateway writes it when nobody else
 * holds a live lease on it (a lone gateway, or one replacing a dead one); otherwise the export is
 * read-only and the owner keeps writing. A read-only export claims again at the next open, so it
 * becomes writable once the owner is gone. The cluster calls block, so they run on one admin
 * thread, never on an event loop.
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

  private final io.vmd.client.Repairer repairer;

  ExportRegistry(VmdClient client, MeterRegistry meters, io.vmd.client.Repairer repairer) {
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
    return CompletableFuture.supplyAsync(() -> call(client::listNamespaces), admin);
  }

  /** What NBD_OPT_INFO tells of an export: its record, and whether a GO now would get it read-only. */
  record Described(NamespaceRecord record, boolean readOnly) {}

  /** The namespace without attaching it (for NBD_OPT_INFO). */
  CompletableFuture<Described> describe(String name) {
    CompletableFuture<Export> attached = open.get(name);
    if (attached != null && attached.isDone() && !attached.isCompletedExceptionally()) {
      Export e = attached.join();
      if (!e.readOnly()) {
        return CompletableFuture.completedFuture(new Described(e.namespace.record(), false));
      }
    }
    return CompletableFuture.supplyAsync(() -> call(() -> {
      VmdClient.Ownership o = client.ownership(name);
      return new Described(o.namespace().record(), o.ownedByAnother());
    }), admin);
  }

  /** The export for the namespace, attaching it on first use (and claiming it again while read-only). */
  CompletableFuture<Export> open(String name) {
    CompletableFuture<Export> f = open.compute(name, (n, cur) -> {
      if (cur != null && (!cur.isDone() || (!cur.isCompletedExceptionally() && cur.join().namespace.writable()))) {
        return cur;
      }
      Export old = cur != null && cur.isDone() && !cur.isCompletedExceptionally() ? cur.join() : null;
      return CompletableFuture.supplyAsync(() -> {
        Namespace ns = call(() -> client.attach(n, VmdClient.Access.CLAIM));
        if (old == null) {
          return track(new Export(ns, new ExportMetrics(meters, n)));
        }
        // Connections already open on the old (read-only) attachment keep it; new ones get this one.
        old.namespace.release();
        return track(new Export(ns, old.metrics));
      }, admin);
    });
    // A failed attach is not cached: the next connection tries again.
    f.whenComplete((e, err) -> {
      if (err != null) {
        open.remove(name, f);
      }
    });
    return f;
  }

  /** Every export attached so far. */
  java.util.List<Export> openExports() {
    java.util.List<Export> all = new java.util.ArrayList<>();
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
      throw new java.util.concurrent.CompletionException(e);
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
