package io.vmd.server;

import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How one vmd-server runs; made with {@link #builder} (or {@link #inMemory}) and changed with
 * {@link #toBuilder}.
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
 * @param limits what a peer may hold of the server before and after it has proved itself
 * @param tls mutual TLS with clients (its node certificate, the cluster's CA), or null for plaintext
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
    HostPort advertise,
    Limits limits,
    ClusterTls tls) {

  public static final String DEFAULT_CLUSTER = "vmd";

  public ServerConfig {
    meta = meta == null ? List.of() : List.copyOf(meta);
    limits = limits == null ? Limits.DEFAULT : limits;
  }

  /**
   * What peers may hold of a server: hostile and slow peers are normal, so every connection has a byte
   * budget and a deadline before it has said HELLO (and, in a keyed cluster, proved the key).
   *
   * @param maxConnections connections open at once; past it new ones are closed at accept
   * @param helloTimeout how long a connection may take to say HELLO (and AUTH) before it is closed
   * @param preAuthFrameBytes the largest frame accepted before HELLO (and AUTH): they are small
   */
  public record Limits(int maxConnections, Duration helloTimeout, int preAuthFrameBytes) {
    public static final Limits DEFAULT = new Limits(4096, Duration.ofSeconds(10), 16 << 10);

    public Limits {
      if (maxConnections < 1 || helloTimeout.isNegative() || helloTimeout.isZero() || preAuthFrameBytes < 1024) {
        throw new IllegalArgumentException("server limits: at least one connection, a positive HELLO timeout and "
            + "pre-authentication frames of at least 1 KiB");
      }
    }
  }

  /** A server of {@code memoryBytes} on {@code listen}, in memory, standalone, with every other setting at its default. */
  public static Builder builder(HostPort listen, long memoryBytes) {
    return new Builder(listen, memoryBytes);
  }

  public static ServerConfig inMemory(HostPort listen, long memoryBytes) {
    return builder(listen, memoryBytes).build();
  }

  /** A builder holding this configuration's settings. */
  public Builder toBuilder() {
    return new Builder(listen, memoryBytes).store(store, dataDir).cluster(cluster)
        .availabilityInterval(availabilityInterval).ioThreads(ioThreads).clusterKey(clusterKey).meta(meta)
        .advertise(advertise).limits(limits).tls(tls);
  }

  /** Whether the server follows a control plane. */
  public boolean managed() {
    return !meta.isEmpty();
  }

  public ServerConfig withMeta(List<HostPort> voters) {
    return toBuilder().meta(voters).build();
  }

  public ServerConfig withListen(HostPort address) {
    return toBuilder().listen(address).build();
  }

  public ServerConfig withAvailabilityInterval(Duration interval) {
    return toBuilder().availabilityInterval(interval).build();
  }

  /** Builds a {@link ServerConfig} (as Caffeine's {@code newBuilder()}) instead of a constructor of 12 positions. */
  public static final class Builder {
    private HostPort listen;
    private final long memoryBytes;
    private String store = "slab";
    private Path dataDir;
    private String cluster = DEFAULT_CLUSTER;
    private Duration availabilityInterval = Duration.ofSeconds(1);
    private int ioThreads;
    private ClusterKey clusterKey;
    private List<HostPort> meta = List.of();
    private HostPort advertise;
    private Limits limits = Limits.DEFAULT;
    private ClusterTls tls;

    private Builder(HostPort listen, long memoryBytes) {
      this.listen = listen;
      this.memoryBytes = memoryBytes;
    }

    public Builder listen(HostPort address) {
      this.listen = address;
      return this;
    }

    /** The page store engine (slab, chronicle) and, for a persisted one, its directory (else null). */
    public Builder store(String engine, Path dir) {
      this.store = engine;
      this.dataDir = dir;
      return this;
    }

    public Builder cluster(String name) {
      this.cluster = name;
      return this;
    }

    public Builder availabilityInterval(Duration interval) {
      this.availabilityInterval = interval;
      return this;
    }

    public Builder ioThreads(int threads) {
      this.ioThreads = threads;
      return this;
    }

    public Builder clusterKey(ClusterKey key) {
      this.clusterKey = key;
      return this;
    }

    public Builder meta(List<HostPort> voters) {
      this.meta = voters;
      return this;
    }

    public Builder advertise(HostPort address) {
      this.advertise = address;
      return this;
    }

    public Builder limits(Limits limits) {
      this.limits = limits;
      return this;
    }

    /** Mutual TLS with every client: only holders of a certificate of the cluster's CA connect. */
    public Builder tls(ClusterTls tls) {
      this.tls = tls;
      return this;
    }

    public ServerConfig build() {
      return new ServerConfig(listen, memoryBytes, store, dataDir, cluster, availabilityInterval, ioThreads, clusterKey,
          meta, advertise, limits, tls);
    }
  }
}
