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
}
