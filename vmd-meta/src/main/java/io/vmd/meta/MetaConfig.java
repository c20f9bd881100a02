package io.vmd.meta;

import io.vmd.common.HostPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * One voter of the control plane.
 *
 * @param listen this voter's address (it names the voter: give the same address in every --peers list)
 * @param peers every voter of the group, this one included (1, 3 or 5)
 * @param dir where the Raft log and snapshots go
 * @param cluster the cluster name (names the Raft group)
 * @param snapshotEvery log entries between snapshots
 */
public record MetaConfig(HostPort listen, List<HostPort> peers, Path dir, String cluster, long snapshotEvery) {
  public MetaConfig {
    peers = List.copyOf(peers);
    if (!peers.contains(listen)) {
      throw new IllegalArgumentException("the control-plane peers " + peers + " do not include this voter "
          + listen + " (list every voter, this one included, by the address it listens on)");
    }
    if (peers.size() % 2 == 0) {
      throw new IllegalArgumentException("a control-plane group needs an odd number of voters (1, 3 or 5), not "
          + peers.size());
    }
  }

  /** A single voter. */
  public static MetaConfig single(HostPort listen, Path dir, String cluster) {
    return new MetaConfig(listen, List.of(listen), dir, cluster, 1000);
  }

  /** How long a client waits for the control plane before giving up on a request. */
  public static final Duration REQUEST_DEADLINE = Duration.ofSeconds(15);
}
