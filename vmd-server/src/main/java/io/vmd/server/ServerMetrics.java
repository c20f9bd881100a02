package io.vmd.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.vmd.common.tls.SecurityMeters;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import io.vmd.server.store.OffHeapSlabStore;
import io.vmd.server.store.PageStore;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The server's meters. Per-op timers and counters are resolved once into arrays so that recording on
 * the data path is an array load and an add: no lookup, no allocation.
 */
final class ServerMetrics {
  private final MeterRegistry registry;
  private final PageStore store;
  private final Timer[] requestTimers = new Timer[Op.AVAILABILITY + 1];
  private final Counter[] errors = new Counter[ErrorCode.values().length];
  private final Counter pagesWritten;
  private final Counter pagesRead;
  private final Counter pagesDeleted;
  private final ConcurrentHashMap<Integer, Meter[]> namespaceGauges = new ConcurrentHashMap<>();

  ServerMetrics(MeterRegistry registry, PageStore store) {
    this.registry = registry;
    this.store = store;
    for (int op = Op.HELLO; op <= Op.AVAILABILITY; op++) {
      requestTimers[op] = Timer.builder("vmd.server.request")
          .description("time to serve a request, by op")
          .tag("op", Op.name(op))
          .publishPercentileHistogram()
          .register(registry);
    }
    for (ErrorCode code : ErrorCode.values()) {
      if (code != ErrorCode.OK) {
        errors[code.ordinal()] = Counter.builder("vmd.server.errors")
            .description("error replies, by code").tag("code", code.name()).register(registry);
      }
    }
    pagesWritten = Counter.builder("vmd.server.pages.written").description("pages stored by PUTs").register(registry);
    pagesRead = Counter.builder("vmd.server.pages.read").description("pages sent by GETs").register(registry);
    pagesDeleted = Counter.builder("vmd.server.pages.deleted").description("pages deleted (trims, namespace deletes)").register(registry);
    Gauge.builder("vmd.server.pages.stored", store, PageStore::usedPages).description("pages held now").register(registry);
    Gauge.builder("vmd.server.stored", store, s -> (double) s.usedPages() * Pages.PAGE_SIZE)
        .description("bytes of pages held now").baseUnit("bytes").register(registry);
    Gauge.builder("vmd.server.capacity", store, s -> (double) s.capacityPages() * Pages.PAGE_SIZE)
        .description("bytes of pages this server may hold").baseUnit("bytes").register(registry);
    Gauge.builder("vmd.server.free", store,
            s -> (double) (s.capacityPages() - Math.min(s.capacityPages(), s.usedPages())) * Pages.PAGE_SIZE)
        .description("bytes of pages this server can still take").baseUnit("bytes").register(registry);
    if (store instanceof OffHeapSlabStore slab) {
      Gauge.builder("vmd.server.memory.allocated", slab,
              OffHeapSlabStore::allocatedBytes)
          .description("direct memory held by page chunks").baseUnit("bytes").register(registry);
    }
  }

  /** A connection closed before it was served: over the connection limit, or silent past the HELLO deadline. */
  void connectionRefused(String reason) {
    Counter.builder("vmd.server.connections.refused").description("connections closed unserved, by reason")
        .tag("reason", reason).register(registry).increment();
    if (reason.equals("tls") || reason.equals("role") || reason.equals("cluster_key")) {
      SecurityMeters.authFailure(registry, "server", reason);
    }
  }

  /** Removes this server's meters, so that a server restarted in the same registry starts clean. */
  void close() {
    for (Meter m : registry.getMeters()) {
      String name = m.getId().getName();
      // The security meters are shared by name with the other roles (a gateway's in vmd up's registry):
      // only this server's own, tagged role="server", go.
      boolean security = name.startsWith("vmd.auth.") || name.startsWith("vmd.certificate.");
      if (name.startsWith("vmd.server.") || security && "server".equals(m.getId().getTag("role"))) {
        registry.remove(m);
      }
    }
  }

  void request(byte op, long startNanos) {
    requestTimers[op].record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
  }

  void error(ErrorCode code) {
    errors[code.ordinal()].increment();
  }

  void written(int pages) {
    pagesWritten.increment(pages);
  }

  void read(int pages) {
    pagesRead.increment(pages);
  }

  void deleted(long pages) {
    pagesDeleted.increment(pages);
  }

  void namespaceAdded(NamespaceRecord ns) {
    namespaceGauges.computeIfAbsent(ns.id(), id -> new Meter[] {
      Gauge.builder("vmd.server.namespace.pages", store, s -> s.pageCount(id))
          .description("pages of the namespace held here").tag("namespace", ns.name()).register(registry),
      Gauge.builder("vmd.server.namespace.stored", store, s -> (double) s.pageCount(id) * Pages.PAGE_SIZE)
          .description("bytes of the namespace's pages held here").tag("namespace", ns.name()).baseUnit("bytes").register(registry)
    });
  }

  void namespaceRemoved(int id) {
    Meter[] meters = namespaceGauges.remove(id);
    if (meters != null) {
      for (Meter m : meters) {
        registry.remove(m);
      }
    }
  }
}
