package io.vmd.server;

import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How one vmd-server runs.
 *
 * @param listen address to bind (port 0 picks a free one)
 * @param memoryBytes exact page capacity in bytes
 * @param store page store engine: slab or chronicle
 * @param dataDir directory of a persisted store and namespace table, or null
 * @param cluster cluster name; clients of another cluster are refused at HELLO
 * @param availabilityInterval how often free memory is pushed to clients
 * @param ioThreads Netty event loop threads (0: one per core)
 * @param clusterKey the cluster's shared secret, or null: with it, clients must prove they hold it
 * @param meta the control plane's voters (any of them): the server joins it and takes its namespaces
 *     and epochs from it; empty for a standalone server whose clients administer it directly (tests)
 * @param advertise the address clients are told to use, or null for the bound one
 */
public record ServerConfig(
    HostPort listen,
    long memoryBytes,
    String store,
    Path dataDir,
    String cluster,
    Duration availabilityInterval,
    int ioThreads,
    ClusterKey clusterKey,
    List<HostPort> meta,
    HostPort advertise) {

  public ServerConfig {
    meta = meta == null ? List.of() : List.copyOf(meta);
  }

  public ServerConfig(HostPort listen, long memoryBytes, String store, Path dataDir, String cluster,
      Duration availabilityInterval, int ioThreads) {
    this(listen, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, null, null, null);
  }

  public ServerConfig(HostPort listen, long memoryBytes, String store, Path dataDir, String cluster,
      Duration availabilityInterval, int ioThreads, ClusterKey clusterKey) {
    this(listen, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, clusterKey, null, null);
  }

  /** Whether the server follows a control plane. */
  public boolean managed() {
    return !meta.isEmpty();
  }

  public ServerConfig withMeta(List<HostPort> voters) {
    return new ServerConfig(listen, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, clusterKey,
        voters, advertise);
  }

  public static final String DEFAULT_CLUSTER = "vmd";

  public static ServerConfig inMemory(HostPort listen, long memoryBytes) {
    return new ServerConfig(listen, memoryBytes, "slab", null, DEFAULT_CLUSTER, Duration.ofSeconds(1), 0);
  }

  public ServerConfig withStore(String engine, Path dir) {
    return new ServerConfig(listen, memoryBytes, engine, dir, cluster, availabilityInterval, ioThreads, clusterKey, meta,
        advertise);
  }

  public ServerConfig withListen(HostPort address) {
    return new ServerConfig(address, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, clusterKey, meta,
        advertise);
  }

  public ServerConfig withAvailabilityInterval(Duration interval) {
    return new ServerConfig(listen, memoryBytes, store, dataDir, cluster, interval, ioThreads, clusterKey, meta,
        advertise);
  }

  public ServerConfig withClusterKey(ClusterKey key) {
    return new ServerConfig(listen, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, key, meta,
        advertise);
  }

  public ServerConfig withCluster(String name) {
    return new ServerConfig(listen, memoryBytes, store, dataDir, name, availabilityInterval, ioThreads, clusterKey, meta,
        advertise);
  }
}
