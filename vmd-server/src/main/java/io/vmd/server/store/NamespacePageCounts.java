package io.vmd.server.store;

import io.netty.util.collection.IntObjectHashMap;

/**
 * Pages held per namespace id. A primitive-keyed map of one-element counters: no boxing on the data
 * path, and memory follows the number of namespaces rather than the largest id (up to 2^24).
 * Callers hold the store's lock.
 */
final class NamespacePageCounts {
  private final IntObjectHashMap<long[]> counts = new IntObjectHashMap<>();

  long get(int namespace) {
    long[] c = counts.get(namespace);
    return c == null ? 0 : c[0];
  }

  void add(int namespace, long delta) {
    long[] c = counts.get(namespace);
    if (c == null) {
      c = new long[1];
      counts.put(namespace, c);
    }
    c[0] += delta;
    if (c[0] == 0) {
      counts.remove(namespace);
    }
  }

  void clear(int namespace) {
    counts.remove(namespace);
  }
}
