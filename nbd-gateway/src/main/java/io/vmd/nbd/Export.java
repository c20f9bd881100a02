package io.vmd.nbd;

import io.vmd.client.Namespace;

/**
 * One namespace served as an NBD export. Every connection to the export shares this object: one
 * location table and one page ordering, so a write acknowledged on one connection is seen by a read
 * on any other (which is what CAN_MULTI_CONN promises).
 */
final class Export {
  final Namespace namespace;
  final PageOrdering ordering = new PageOrdering();
  final ExportMetrics metrics;

  Export(Namespace namespace, ExportMetrics metrics) {
    this.namespace = namespace;
    this.metrics = metrics;
  }

  String name() {
    return namespace.name();
  }

  long size() {
    return namespace.sizeBytes();
  }

  /**
   * Read-only: another owner wrote the namespace when this gateway attached it. (One taken from this
   * gateway later by a hand-off is not read-only but stale: its writes fail with EIO.)
   */
  boolean readOnly() {
    return namespace.readOnly();
  }

  /** Orders a repair run on pages [first, last] with the export's NBD requests, like a write. */
  final io.vmd.client.Repairer.RangeLock repairLock = (first, last, waitMillis) -> {
    PageOrdering.Entry entry = ordering.enter(first, last, true);
    if (entry.ready != null) {
      try {
        entry.ready.get(waitMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException busy) {
        ordering.release(entry);
        return null;
      } catch (InterruptedException e) {
        ordering.release(entry);
        throw e;
      }
    }
    return () -> ordering.release(entry);
  };

  /** NBD transmission flags of this export. */
  int transmissionFlags(int base) {
    return readOnly() ? base | Nbd.FLAG_READ_ONLY : base;
  }
}
