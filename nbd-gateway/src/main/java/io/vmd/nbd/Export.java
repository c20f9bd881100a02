package io.vmd.nbd;

import io.vmd.client.Namespace;
import io.vmd.client.Repairer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * One namespace served as an NBD export. Every connection to the export shares this object: one
 * location table and one page ordering, so a write acknowledged on one connection is seen by a read
 * on any other (which is what CAN_MULTI_CONN promises).
 *
 * <p>The attachment behind it changes when this gateway comes to own the namespace: an export opened
 * while another owner held it stands by (reads served, writes wait for ownership), and a write on it
 * asks the control plane for the namespace ({@link #claim}); once granted, every connection of the
 * export writes through the new attachment. A migration's destination is such an export until the
 * source's gateway is fenced at switch-over.
 */
final class Export {
  /** The attachment connections start from; replaced (never by a stale one) when a claim succeeds. */
  volatile Namespace namespace;
  final PageOrdering ordering = new PageOrdering();
  final ExportMetrics metrics;
  private final Function<Export, CompletableFuture<Namespace>> claimer;

  Export(Namespace namespace, ExportMetrics metrics,
      Function<Export, CompletableFuture<Namespace>> claimer) {
    this.namespace = namespace;
    this.metrics = metrics;
    this.claimer = claimer;
  }

  /**
   * Asks for the namespace for writing, when the attachment stands by: completes with the attachment
   * to write through (writable if granted, else the standby one). Claims are coalesced and a refused
   * one is not asked again for a moment, so a client retrying writes does not flood the control plane.
   */
  CompletableFuture<Namespace> claim() {
    return claimer.apply(this);
  }

  String name() {
    return namespace.name();
  }

  long size() {
    return namespace.sizeBytes();
  }

  /** Orders a repair run on pages [first, last] with the export's NBD requests, like a write. */
  final Repairer.RangeLock repairLock = (first, last, waitMillis) -> {
    PageOrdering.Entry entry = ordering.enter(first, last, true);
    if (entry.ready != null) {
      try {
        entry.ready.get(waitMillis, TimeUnit.MILLISECONDS);
      } catch (TimeoutException | ExecutionException busy) {
        ordering.release(entry);
        return null;
      } catch (InterruptedException e) {
        ordering.release(entry);
        throw e;
      }
    }
    return () -> ordering.release(entry);
  };

}
