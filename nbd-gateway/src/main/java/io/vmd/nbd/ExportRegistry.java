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
 * one for writing at most once (attaching raises the namespace's epoch and rebuilds its location
 * table, so every connection of this gateway must share the same attachment). The cluster calls
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

  ExportRegistry(VmdClient client, MeterRegistry meters) {
    this.client = client;
    this.meters = meters;
  }

  CompletableFuture<List<NamespaceRecord>> list() {
    return CompletableFuture.supplyAsync(() -> call(client::listNamespaces), admin);
  }

  /** The namespace's record without attaching it (for NBD_OPT_INFO). */
  CompletableFuture<NamespaceRecord> describe(String name) {
    CompletableFuture<Export> attached = open.get(name);
    if (attached != null && attached.isDone() && !attached.isCompletedExceptionally()) {
      return CompletableFuture.completedFuture(attached.join().namespace.record());
    }
    return CompletableFuture.supplyAsync(() -> call(() -> client.namespace(name)), admin);
  }

  /** The export for the namespace, attaching it on first use. */
  CompletableFuture<Export> open(String name) {
    CompletableFuture<Export> f = open.computeIfAbsent(name, n -> CompletableFuture.supplyAsync(() -> {
      Namespace ns = call(() -> client.attach(n, true));
      return new Export(ns, new ExportMetrics(meters, n));
    }, admin));
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

  @Override
  public void close() {
    admin.shutdownNow();
  }
}
