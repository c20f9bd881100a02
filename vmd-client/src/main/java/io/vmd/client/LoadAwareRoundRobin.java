package io.vmd.client;

/**
 * The Agile paper's placement: the servers that report free memory, in turn. A full or dead server
 * is skipped until it reports room again.
 */
final class LoadAwareRoundRobin implements PlacementPolicy {
  private int cursor;

  @Override
  public synchronized int choose(ServerState[] servers, int replicas, long bytes, int[] out) {
    int n = 0;
    if (servers.length == 0) {
      return 0;
    }
    cursor %= servers.length; // servers come and go
    for (int tried = 0; tried < servers.length && n < replicas; tried++) {
      ServerState s = servers[cursor];
      cursor = (cursor + 1) % servers.length;
      if (PlacementPolicy.eligible(s, bytes, out, n)) {
        out[n++] = s.index();
      }
    }
    return n;
  }
}
