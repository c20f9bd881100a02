package io.vmd.meta;

import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
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
 * @param tls this voter's node certificate and the cluster's CA; null runs the control plane
 *     without TLS or signatures (--insecure)
 */
public record MetaConfig(HostPort listen, List<HostPort> peers, Path dir, String cluster, long snapshotEvery,
    ClusterTls tls) {
  public MetaConfig(HostPort listen, List<HostPort> peers, Path dir, String cluster, long snapshotEvery) {
    this(listen, peers, dir, cluster, snapshotEvery, null);
  }

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

  /** This voter with {@code tls} (null: insecure). */
  public MetaConfig withTls(ClusterTls tls) {
    return new MetaConfig(listen, peers, dir, cluster, snapshotEvery, tls);
  }

  /** This voter at another address (the same in the peer list). */
  public MetaConfig withListen(HostPort address) {
    return new MetaConfig(address, peers.stream().map(p -> p.equals(listen) ? address : p).toList(), dir, cluster,
        snapshotEvery, tls);
  }

  /** A single voter. */
  public static MetaConfig single(HostPort listen, Path dir, String cluster) {
    return new MetaConfig(listen, List.of(listen), dir, cluster, 1000);
  }

  /** How long a client waits for the control plane before giving up on a request. */
  public static final Duration REQUEST_DEADLINE = Duration.ofSeconds(15);
}
