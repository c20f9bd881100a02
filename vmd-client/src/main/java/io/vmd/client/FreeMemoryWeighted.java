package io.vmd.client;

import java.util.Arrays;

/**
 * Smooth weighted round-robin (as nginx balances upstreams) with each server weighted by its free
 * memory: a server with twice the free memory receives twice the new pages, interleaved rather than
 * in bursts. This fills servers of unequal size evenly in proportion, where plain round-robin fills
 * the smallest first.
 */
final class FreeMemoryWeighted implements PlacementPolicy {
  private long[] current = new long[0];

  @Override
  public synchronized int choose(ServerState[] servers, int replicas, long bytes, int[] out) {
    // Indexed by slot; grows as servers join.
    for (ServerState s : servers) {
      if (s.index() >= current.length) {
        current = Arrays.copyOf(current, s.index() + 1);
      }
    }
    int n = 0;
    while (n < replicas) {
      long total = 0;
      int best = -1;
      for (ServerState s : servers) {
        if (!PlacementPolicy.eligible(s, bytes, out, n)) {
          continue;
        }
        long weight = Math.max(1, s.free() >>> 20);
        current[s.index()] += weight;
        total += weight;
        if (best < 0 || current[s.index()] > current[best]) {
          best = s.index();
        }
      }
      if (best < 0) {
        break;
      }
      current[best] -= total;
      out[n++] = best;
    }
    return n;
  }
}
