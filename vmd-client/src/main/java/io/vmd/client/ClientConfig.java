package io.vmd.client;

import io.vmd.common.HostPort;
import java.time.Duration;
import java.util.List;

/**
 * How a client reaches its cluster.
 *
 * @param servers every server, in an order all clients of the cluster share (the location table
 *     stores indices into this list)
 * @param cluster cluster name checked at HELLO
 * @param placement "round-robin" (the paper's load-aware round-robin) or "weighted" (by free memory)
 * @param connectTimeout how long to wait for a server to connect and answer HELLO
 * @param requestTimeout how long any request may wait for its reply
 * @param ioThreads Netty event loop threads
 * @param downAfter a server silent this long (no availability report, no reply) is taken as down
 * @param clusterKey the cluster's shared secret, or null; with it, servers must prove they hold it too
 */
public record ClientConfig(
    List<HostPort> servers,
    String cluster,
    String placement,
    Duration connectTimeout,
    Duration requestTimeout,
    int ioThreads,
    Duration downAfter,
    io.vmd.common.ClusterKey clusterKey) {

  public ClientConfig {
    if (servers == null || servers.isEmpty()) {
      throw new IllegalArgumentException("no servers given (use --servers HOST:PORT,... or VMD_SERVERS)");
    }
    if (servers.size() > 254) {
      throw new IllegalArgumentException("at most 254 servers per cluster, got " + servers.size());
    }
    servers = List.copyOf(servers);
    if (downAfter == null) {
      downAfter = Duration.ofSeconds(3);
    }
  }

  /** The configuration without an explicit silence limit (a server silent for 3 s is down). */
  public ClientConfig(List<HostPort> servers, String cluster, String placement, Duration connectTimeout,
      Duration requestTimeout, int ioThreads) {
    this(servers, cluster, placement, connectTimeout, requestTimeout, ioThreads, Duration.ofSeconds(3), null);
  }

  public static ClientConfig of(List<HostPort> servers) {
    return new ClientConfig(servers, "vmd", "round-robin", Duration.ofSeconds(3), Duration.ofSeconds(10), 2);
  }

  public ClientConfig withPlacement(String policy) {
    return new ClientConfig(servers, cluster, policy, connectTimeout, requestTimeout, ioThreads, downAfter, clusterKey);
  }

  public ClientConfig withCluster(String name) {
    return new ClientConfig(servers, name, placement, connectTimeout, requestTimeout, ioThreads, downAfter, clusterKey);
  }

  public ClientConfig withIoThreads(int threads) {
    return new ClientConfig(servers, cluster, placement, connectTimeout, requestTimeout, threads, downAfter, clusterKey);
  }

  /** A server that sends nothing (no report, no reply) for this long is taken as down (default 3 s). */
  public ClientConfig withDownAfter(Duration silence) {
    return new ClientConfig(servers, cluster, placement, connectTimeout, requestTimeout, ioThreads, silence, clusterKey);
  }

  /** Connects with the cluster's key (and refuses servers that cannot prove they hold it). */
  public ClientConfig withClusterKey(io.vmd.common.ClusterKey key) {
    return new ClientConfig(servers, cluster, placement, connectTimeout, requestTimeout, ioThreads, downAfter, key);
  }

  public ClientConfig withRequestTimeout(Duration timeout) {
    return new ClientConfig(servers, cluster, placement, connectTimeout, timeout, ioThreads, downAfter, clusterKey);
  }
}
