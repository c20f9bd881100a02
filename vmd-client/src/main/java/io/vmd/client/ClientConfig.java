package io.vmd.client;

import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import java.time.Duration;
import java.util.List;

/**
 * How a client reaches its cluster.
 *
 * @param meta the control plane's voters, any of them, in any order: the client learns the servers
 *     and the namespaces there
 * @param cluster cluster name checked at HELLO (and naming the control plane's group)
 * @param placement "round-robin" (the paper's load-aware round-robin) or "weighted" (by free memory)
 * @param connectTimeout how long to wait for a server to connect and answer HELLO
 * @param requestTimeout how long any request may wait for its reply
 * @param ioThreads Netty event loop threads
 * @param downAfter a server silent this long (no availability report, no reply) is taken as down
 * @param clusterKey the cluster's shared secret, or null; with it, servers must prove they hold it too
 * @param lease how long ownership of a namespace lasts without renewal (renewed every third of it)
 * @param attachWait how long an attach waits for every server that may hold the namespace's pages;
 *     past it, pages that only a server still silent could hold read as errors, never as zeros
 * @param maxQueuedBytes bytes of requests one server connection may queue while the server does not
 *     take them (its socket is full): past it, new requests to that server fail at once as UNAVAILABLE
 *     (a write is placed elsewhere, a read asks another replica) instead of growing memory
 * @param tls mutual TLS with servers (this client's certificate, the cluster's CA), or null for plaintext
 * @param sealKey the cluster's seal key (32 bytes; never on a memory server), or null: namespaces
 *     created with it have their pages sealed, and only a client holding it opens them
 */
public record ClientConfig(
    List<HostPort> meta,
    String cluster,
    String placement,
    Duration connectTimeout,
    Duration requestTimeout,
    int ioThreads,
    Duration downAfter,
    ClusterKey clusterKey,
    Duration lease,
    Duration attachWait,
    long maxQueuedBytes,
    ClusterTls tls,
    byte[] sealKey) {
  public static final long DEFAULT_MAX_QUEUED_BYTES = 64L << 20;

  public ClientConfig {
    if (meta == null || meta.isEmpty()) {
      throw new IllegalArgumentException("no control plane given (use --meta HOST:PORT,... or VMD_META)");
    }
    meta = List.copyOf(meta);
    if (downAfter == null) {
      downAfter = Duration.ofSeconds(3);
    }
    if (lease == null) {
      lease = Duration.ofSeconds(5);
    }
    if (attachWait == null) {
      attachWait = requestTimeout;
    }
    if (maxQueuedBytes <= 0) {
      maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES;
    }
    if (sealKey != null && sealKey.length != 32) {
      throw new IllegalArgumentException("a seal key is 32 bytes, not " + sealKey.length);
    }
    sealKey = sealKey == null ? null : sealKey.clone();
  }

  @Override
  public byte[] sealKey() {
    return sealKey == null ? null : sealKey.clone();
  }

  public static ClientConfig of(List<HostPort> meta) {
    return new ClientConfig(meta, "vmd", "round-robin", Duration.ofSeconds(3), Duration.ofSeconds(10), 2,
        Duration.ofSeconds(3), null, null, null, 0, null, null);
  }

  private ClientConfig with(String cluster, String placement, int ioThreads, Duration downAfter,
      ClusterKey key, Duration requestTimeout, Duration lease, Duration attachWait) {
    return new ClientConfig(meta, cluster, placement, connectTimeout, requestTimeout, ioThreads, downAfter, key,
        lease, attachWait, maxQueuedBytes, tls, sealKey);
  }

  public ClientConfig withPlacement(String policy) {
    return with(cluster, policy, ioThreads, downAfter, clusterKey, requestTimeout, lease, attachWait);
  }

  public ClientConfig withCluster(String name) {
    return with(name, placement, ioThreads, downAfter, clusterKey, requestTimeout, lease, attachWait);
  }

  public ClientConfig withIoThreads(int threads) {
    return with(cluster, placement, threads, downAfter, clusterKey, requestTimeout, lease, attachWait);
  }

  /** A server that sends nothing (no report, no reply) for this long is taken as down (default 3 s). */
  public ClientConfig withDownAfter(Duration silence) {
    return with(cluster, placement, ioThreads, silence, clusterKey, requestTimeout, lease, attachWait);
  }

  /** Connects with the cluster's key (and refuses servers that cannot prove they hold it). */
  public ClientConfig withClusterKey(ClusterKey key) {
    return with(cluster, placement, ioThreads, downAfter, key, requestTimeout, lease, attachWait);
  }

  /** Also the attach wait, unless that was set apart. */
  public ClientConfig withRequestTimeout(Duration timeout) {
    return with(cluster, placement, ioThreads, downAfter, clusterKey, timeout, lease,
        attachWait.equals(requestTimeout) ? timeout : attachWait);
  }

  public ClientConfig withConnectTimeout(Duration d) {
    return new ClientConfig(meta, cluster, placement, d, requestTimeout, ioThreads, downAfter, clusterKey, lease,
        attachWait, maxQueuedBytes, tls, sealKey);
  }

  public ClientConfig withLease(Duration d) {
    return with(cluster, placement, ioThreads, downAfter, clusterKey, requestTimeout, d, attachWait);
  }

  public ClientConfig withAttachWait(Duration d) {
    return with(cluster, placement, ioThreads, downAfter, clusterKey, requestTimeout, lease, d);
  }

  public ClientConfig withMaxQueuedBytes(long bytes) {
    return new ClientConfig(meta, cluster, placement, connectTimeout, requestTimeout, ioThreads, downAfter, clusterKey,
        lease, attachWait, bytes, tls, sealKey);
  }

  /** Mutual TLS with every server: this client proves who it is, and each server must be a node of the CA. */
  public ClientConfig withTls(ClusterTls t) {
    return new ClientConfig(meta, cluster, placement, connectTimeout, requestTimeout, ioThreads, downAfter, clusterKey,
        lease, attachWait, maxQueuedBytes, t, sealKey);
  }

  /** Seals the pages of namespaces this client creates, and opens sealed ones, with this key (null: none). */
  public ClientConfig withSealKey(byte[] key) {
    return new ClientConfig(meta, cluster, placement, connectTimeout, requestTimeout, ioThreads, downAfter, clusterKey,
        lease, attachWait, maxQueuedBytes, tls, key);
  }

  /** How long an operation made of several requests may take: its requests' deadline and a margin. */
  public long operationTimeoutMillis() {
    return requestTimeout.toMillis() * 2 + 1000;
  }
}
