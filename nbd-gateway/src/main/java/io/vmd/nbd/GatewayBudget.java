package io.vmd.nbd;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes all NBD connections of a gateway hold together: WRITE payloads received and not yet
 * stored, READ replies admitted and not yet taken by their clients. A connection charges what it
 * admits and releases it when the reply has left for the socket; one that finds the budget spent
 * stops reading and waits here until enough is free for any request, so a few greedy clients slow
 * everyone down a little instead of taking the gateway's memory.
 */
final class GatewayBudget {
  private final long limit;
  private final long perConnection;
  private final AtomicLong used = new AtomicLong();
  private final ConcurrentLinkedQueue<ConnectionBudget> waiters = new ConcurrentLinkedQueue<>();
  private final Counter pauses;

  GatewayBudget(long limit, long perConnection, MeterRegistry registry) {
    this.limit = limit;
    this.perConnection = perConnection;
    Gauge.builder("vmd.gateway.budget.used", used, AtomicLong::doubleValue).baseUnit("bytes")
        .description("bytes NBD connections hold: payloads received and replies not yet sent").register(registry);
    Gauge.builder("vmd.gateway.budget.limit", () -> limit).baseUnit("bytes")
        .description("most bytes all NBD connections may hold together").register(registry);
    Gauge.builder("vmd.gateway.budget.connection.limit", () -> perConnection).baseUnit("bytes")
        .description("most bytes one NBD connection may hold").register(registry);
    pauses = Counter.builder("vmd.gateway.reads.paused")
        .description("times an NBD connection stopped reading because a budget was spent").register(registry);
  }

  long limit() {
    return limit;
  }

  long perConnection() {
    return perConnection;
  }

  long used() {
    return used.get();
  }

  boolean fits(long bytes) {
    return used.get() + bytes <= limit;
  }

  boolean spent() {
    return used.get() >= limit;
  }

  void charge(long bytes) {
    used.addAndGet(bytes);
  }

  void release(long bytes) {
    long now = used.addAndGet(-bytes);
    if (!waiters.isEmpty() && limit - now >= ConnectionBudget.MAX_COST) {
      wake();
    }
  }

  void paused() {
    pauses.increment();
  }

  /** {@code s} is woken (on its own loop) once enough of the budget is free for any request. */
  void await(ConnectionBudget s) {
    waiters.add(s);
    if (limit - used.get() >= ConnectionBudget.MAX_COST) {
      wake();
    }
  }

  private void wake() {
    ConnectionBudget s;
    while ((s = waiters.poll()) != null) {
      s.budgetFreed();
    }
  }
}
