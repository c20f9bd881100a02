package io.vmd.client;

/**
 * Chooses where new pages go. Only servers that are up and report room for the pages are
 * candidates; a policy never picks the same server twice for one placement.
 */
interface PlacementPolicy {

  /**
   * Picks up to {@code replicas} distinct servers with at least {@code bytes} free.
   *
   * @param out receives the chosen servers' slots
   * @return how many were chosen (fewer than {@code replicas} when the cluster lacks room)
   */
  int choose(ServerState[] servers, int replicas, long bytes, int[] out);

  static PlacementPolicy named(String name) {
    switch (name) {
      case "round-robin":
        return new LoadAwareRoundRobin();
      case "weighted":
        return new FreeMemoryWeighted();
      default:
        throw new IllegalArgumentException("unknown placement '" + name + "' (round-robin or weighted)");
    }
  }

  static boolean eligible(ServerState s, long bytes, int[] chosen, int n) {
    if (!s.takesNewPages() || s.free() < bytes) {
      return false;
    }
    for (int i = 0; i < n; i++) {
      if (chosen[i] == s.index()) {
        return false;
      }
    }
    return true;
  }
}
