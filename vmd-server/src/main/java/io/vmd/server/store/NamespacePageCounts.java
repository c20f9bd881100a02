package io.vmd.server.store;

import java.util.Arrays;

/** Pages held per namespace id, in a growable primitive array (ids are small and dense). */
final class NamespacePageCounts {
  private long[] counts = new long[64];

  long get(int namespace) {
    return namespace < counts.length ? counts[namespace] : 0;
  }

  void add(int namespace, long delta) {
    if (namespace >= counts.length) {
      counts = Arrays.copyOf(counts, Math.max(namespace + 1, counts.length * 2));
    }
    counts[namespace] += delta;
  }

  void clear(int namespace) {
    if (namespace < counts.length) {
      counts[namespace] = 0;
    }
  }
}
