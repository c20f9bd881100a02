package io.vmd.server;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.HostPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A control plane (one voter, or three) and N vmd-servers in one JVM on 127.0.0.1 ports: the base
 * of every integration test and of {@code vmd up}. Fault injection is part of the API: {@link #kill}
 * stops a server abruptly (its connections drop), {@link #restart} brings it back on the same port
 * (with its pages when the server is persisted; an in-memory one comes back as a new member),
 * {@link #freeze} hangs it, {@link #killMeta} and {@link #restartMeta} do the same to a voter.
 */
public final class MiniVmdCluster implements AutoCloseable {
  private final List<ServerConfig> configs = new ArrayList<>();
  private final List<io.vmd.meta.MetaServer> metas = new ArrayList<>();
  private final List<io.vmd.meta.MetaConfig> metaConfigs = new ArrayList<>();
  private Path metaRoot;
  private boolean ownMetaRoot;
  private final List<VmdServer> servers = new ArrayList<>();
  private final List<PrometheusMeterRegistry> registries = new ArrayList<>();
  private PrometheusMeterRegistry shared;

  private MiniVmdCluster() {}

  public static Builder builder() {
    return new Builder();
  }

  public int size() {
    return servers.size();
  }

  /** The server at {@code i}, or null while it is killed. */
  public VmdServer server(int i) {
    return servers.get(i);
  }

  /** Server {@code i}'s registry (the shared one, when the cluster was built with one). */
  public PrometheusMeterRegistry registry(int i) {
    return shared != null ? shared : registries.get(i);
  }

  private io.micrometer.core.instrument.MeterRegistry meterRegistryFor(int i) {
    if (shared == null) {
      PrometheusMeterRegistry own = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      if (registries.size() > i) {
        registries.set(i, own);
      } else {
        registries.add(own);
      }
      return own;
    }
    // One registry for every server: each server's meters carry server="i".
    io.micrometer.core.instrument.composite.CompositeMeterRegistry tagged =
        new io.micrometer.core.instrument.composite.CompositeMeterRegistry();
    tagged.config().commonTags("server", String.valueOf(i));
    tagged.add(shared);
    if (registries.size() <= i) {
      registries.add(null);
    }
    return tagged;
  }

  public HostPort address(int i) {
    return configs.get(i).listen();
  }

  public List<HostPort> addresses() {
    List<HostPort> out = new ArrayList<>();
    for (int i = 0; i < configs.size(); i++) {
      out.add(address(i));
    }
    return out;
  }

  /** The control plane's voters: what clients are given. */
  public List<HostPort> metaAddresses() {
    List<HostPort> out = new ArrayList<>();
    for (io.vmd.meta.MetaConfig c : metaConfigs) {
      out.add(c.listen());
    }
    return out;
  }

  /** The voters as the {@code --meta} flag takes them. */
  public String metaFlag() {
    return metaAddresses().stream().map(HostPort::toString).collect(Collectors.joining(","));
  }

  /** Voter {@code i}, or null while it is killed. */
  public io.vmd.meta.MetaServer meta(int i) {
    return metas.get(i);
  }

  /** Stops voter {@code i} abruptly. */
  public synchronized void killMeta(int i) {
    io.vmd.meta.MetaServer m = metas.get(i);
    if (m != null) {
      metas.set(i, null);
      m.close();
    }
  }

  /** Starts voter {@code i} again from its log and snapshot. */
  public synchronized void restartMeta(int i) {
    killMeta(i);
    metas.set(i, io.vmd.meta.MetaServer.start(metaConfigs.get(i)));
  }

  /** Server {@code i}'s slot in the control plane (what location tables store). */
  public int slot(int i) {
    return servers.get(i).member().slot();
  }

  /**
   * Starts one more server like the first (store, cluster, key), joining the control plane while the
   * cluster runs; returns its index.
   */
  public synchronized int addServer(long memoryBytes) throws InterruptedException {
    ServerConfig like = configs.get(0);
    int i = configs.size();
    Path dir = like.dataDir() == null ? null : like.dataDir().resolveSibling("server-" + i);
    ServerConfig cfg = new ServerConfig(new HostPort(like.listen().host(), 0), memoryBytes, like.store(), dir,
        like.cluster(), like.availabilityInterval(), 1, like.clusterKey(), like.meta(), null);
    VmdServer s = VmdServer.start(cfg, meterRegistryFor(i));
    configs.add(cfg.withListen(s.address()));
    servers.add(s);
    return i;
  }

  /** Stops server {@code i} at once: connections drop, an in-memory store loses its pages. */
  public synchronized void kill(int i) {
    VmdServer s = servers.get(i);
    if (s != null) {
      servers.set(i, null);
      s.close();
    }
  }

  /** Server {@code i} stops answering and reporting but keeps its connections (a hung host). */
  public synchronized void freeze(int i) {
    servers.get(i).freeze(true);
  }

  public synchronized void thaw(int i) {
    servers.get(i).freeze(false);
  }

  /** Starts server {@code i} again on the same address and store settings. */
  public synchronized void restart(int i) throws InterruptedException {
    kill(i);
    servers.set(i, VmdServer.start(configs.get(i), meterRegistryFor(i)));
  }

  @Override
  public synchronized void close() {
    for (int i = 0; i < servers.size(); i++) {
      kill(i);
    }
    for (int i = 0; i < metas.size(); i++) {
      killMeta(i);
    }
    if (ownMetaRoot && metaRoot != null) {
      try (java.util.stream.Stream<Path> walk = java.nio.file.Files.walk(metaRoot)) {
        walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (java.io.IOException e) {
        // a temporary directory: left for the OS
      }
    }
  }

  public static final class Builder {
    private final List<Long> memories = new ArrayList<>();
    private String store = "slab";
    private Path dataRoot;
    private String cluster = ServerConfig.DEFAULT_CLUSTER;
    private Duration availabilityInterval = Duration.ofMillis(200);
    private String host = "127.0.0.1";
    private PrometheusMeterRegistry sharedRegistry;
    private io.vmd.common.ClusterKey clusterKey;
    private int voters = 1;
    private Path metaDir;
    private HostPort metaListen;

    /** Runs the control plane with this many voters (1 or 3; default 1). */
    public Builder metaVoters(int n) {
      this.voters = n;
      return this;
    }

    /** Runs a single voter on this address (port 0: a free one). */
    public Builder metaListen(HostPort address) {
      this.metaListen = address;
      this.voters = 1;
      return this;
    }

    /** Keeps the control plane's log and snapshots here (default: a temporary directory, deleted at close). */
    public Builder metaDir(Path dir) {
      this.metaDir = dir;
      return this;
    }

    /** Every server requires this cluster key from its clients. */
    public Builder clusterKey(io.vmd.common.ClusterKey key) {
      this.clusterKey = key;
      return this;
    }

    /** Registers every server's meters in this one registry, tagged server="i". */
    public Builder metrics(PrometheusMeterRegistry registry) {
      this.sharedRegistry = registry;
      return this;
    }

    /** Adds {@code count} servers of {@code memoryBytes} each. */
    public Builder servers(int count, long memoryBytes) {
      for (int i = 0; i < count; i++) {
        memories.add(memoryBytes);
      }
      return this;
    }

    /** Adds one server of {@code memoryBytes}. */
    public Builder server(long memoryBytes) {
      memories.add(memoryBytes);
      return this;
    }

    /** Persisted Chronicle stores, one directory per server under {@code root}. */
    public Builder persisted(Path root) {
      this.store = "chronicle";
      this.dataRoot = root;
      return this;
    }

    public Builder store(String engine) {
      this.store = engine;
      return this;
    }

    public Builder cluster(String name) {
      this.cluster = name;
      return this;
    }

    public Builder host(String bindHost) {
      this.host = bindHost;
      return this;
    }

    public Builder availabilityInterval(Duration interval) {
      this.availabilityInterval = interval;
      return this;
    }

    public MiniVmdCluster start() throws InterruptedException {
      MiniVmdCluster c = new MiniVmdCluster();
      c.shared = sharedRegistry;
      try {
        if (metaDir != null) {
          c.metaRoot = metaDir;
        } else {
          c.metaRoot = java.nio.file.Files.createTempDirectory("vmd-meta");
          c.ownMetaRoot = true;
        }
        List<HostPort> voterAddresses = metaListen != null && metaListen.port() != 0 ? List.of(metaListen)
            : io.vmd.meta.FreePorts.loopback(voters);
        for (HostPort a : voterAddresses) {
          io.vmd.meta.MetaConfig mc = new io.vmd.meta.MetaConfig(a, voterAddresses,
              c.metaRoot.resolve("voter-" + a.port()), cluster, 1000);
          c.metaConfigs.add(mc);
          c.metas.add(io.vmd.meta.MetaServer.start(mc));
        }
        for (int i = 0; i < memories.size(); i++) {
          ServerConfig cfg = new ServerConfig(new HostPort(host, 0), memories.get(i), store,
              dataRoot == null ? null : dataRoot.resolve("server-" + i), cluster, availabilityInterval, 1, clusterKey)
              .withMeta(voterAddresses);
          VmdServer s = VmdServer.start(cfg, c.meterRegistryFor(i));
          // Pin the chosen port so that a restart comes back at the same address.
          c.configs.add(cfg.withListen(s.address()));
          c.servers.add(s);
        }
      } catch (InterruptedException | RuntimeException e) {
        c.close();
        throw e;
      } catch (java.io.IOException e) {
        c.close();
        throw new java.io.UncheckedIOException(e);
      }
      return c;
    }
  }
}
