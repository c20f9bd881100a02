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
 * N vmd-servers in one JVM on 127.0.0.1 ports: the base of every integration test and of
 * {@code vmd up}. Fault injection is part of the API: {@link #kill} stops a server abruptly (its
 * connections drop), {@link #restart} brings it back on the same port (with its pages when the
 * server is persisted).
 */
public final class MiniVmdCluster implements AutoCloseable {
  private final List<ServerConfig> configs = new ArrayList<>();
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

  /** The addresses as the {@code --servers} flag takes them. */
  public String serversFlag() {
    return addresses().stream().map(HostPort::toString).collect(Collectors.joining(","));
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
        for (int i = 0; i < memories.size(); i++) {
          ServerConfig cfg = new ServerConfig(new HostPort(host, 0), memories.get(i), store,
              dataRoot == null ? null : dataRoot.resolve("server-" + i), cluster, availabilityInterval, 1, clusterKey);
          VmdServer s = VmdServer.start(cfg, c.meterRegistryFor(i));
          // Pin the chosen port so that a restart comes back at the same address.
          c.configs.add(cfg.withListen(s.address()));
          c.servers.add(s);
        }
      } catch (InterruptedException | RuntimeException e) {
        c.close();
        throw e;
      }
      return c;
    }
  }
}
