package io.vmd.server;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.meta.FreePorts;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A control plane (one voter, or three) and N vmd-servers in one JVM on loopback ports, started
 * together and stopped together: what {@code vmd up}, the benchmarks and the warm-up run on. It only
 * starts and stops; the tests' {@code MiniVmdCluster} (vmd-server's test-jar) builds fault injection
 * on it through the package-private accessors below.
 */
public final class LocalCluster implements AutoCloseable {
  /** How long a private CA's certificates last: longer than any run of a warm-up or a test. */
  private static final Duration PRIVATE_CA_LIFETIME = Duration.ofDays(1);
  private final List<ServerConfig> configs = new ArrayList<>();
  private final List<MetaServer> metas = new ArrayList<>();
  private final List<MetaConfig> metaConfigs = new ArrayList<>();
  private Path metaRoot;
  private boolean ownMetaRoot;
  private final List<VmdServer> servers = new ArrayList<>();
  private final List<PrometheusMeterRegistry> registries = new ArrayList<>();
  private PrometheusMeterRegistry shared;
  private ClusterTls tls;
  private CertificateAuthority privateCa;
  private String clusterName;

  private LocalCluster() {}

  public static Builder<LocalCluster> builder() {
    return new Builder<>(c -> c);
  }

  /** A builder whose {@code start()} hands the started cluster to {@code wrap} (the test kit's way in). */
  static <C> Builder<C> builder(Function<LocalCluster, C> wrap) {
    return new Builder<>(wrap);
  }

  /** The servers' addresses. */
  public List<HostPort> addresses() {
    List<HostPort> out = new ArrayList<>();
    for (ServerConfig c : configs) {
      out.add(c.listen());
    }
    return out;
  }

  /** The control plane's voters: what clients are given. */
  public List<HostPort> metaAddresses() {
    List<HostPort> out = new ArrayList<>();
    for (MetaConfig c : metaConfigs) {
      out.add(c.listen());
    }
    return out;
  }

  /** The voters as the {@code --meta} flag takes them. */
  public String metaFlag() {
    return metaAddresses().stream().map(HostPort::toString).collect(Collectors.joining(","));
  }

  /** The node certificate every voter and server speaks TLS with; null when built {@code insecure()}. */
  public ClusterTls tls() {
    return tls;
  }

  /**
   * A client certificate of {@code role} named {@code name}, signed by the cluster's own CA (a cluster
   * built with {@code privateCa()}): what a client of this cluster, and of no other, connects with.
   */
  public ClusterTls clientTls(String name, Role role) {
    if (privateCa == null) {
      throw new IllegalStateException("this cluster was not built with its own CA (privateCa())");
    }
    CertificateAuthority.Issued c = privateCa.issueClient(new Identity(name, role), PRIVATE_CA_LIFETIME);
    return ClusterTls.of(privateCa.certificate(), c.certificate(), c.key());
  }

  /** The cluster's name (what clients are told with {@code withCluster}). */
  public String clusterName() {
    return clusterName;
  }

  // ---------------------------------------------------------------- for the test kit

  /** The running servers by index (null where one is stopped); the list itself, not a copy. */
  List<VmdServer> servers() {
    return servers;
  }

  /** The running voters by index (null where one is stopped); the list itself, not a copy. */
  List<MetaServer> metas() {
    return metas;
  }

  ServerConfig serverConfig(int i) {
    return configs.get(i);
  }

  MetaConfig metaConfig(int i) {
    return metaConfigs.get(i);
  }

  /** Server {@code i}'s registry (the shared one, when the cluster was built with one). */
  PrometheusMeterRegistry registry(int i) {
    return shared != null ? shared : registries.get(i);
  }

  /** A new registry for (another life of) server {@code i}, or a view of the shared one tagged server="i". */
  MeterRegistry meterRegistryFor(int i) {
    if (shared == null) {
      PrometheusMeterRegistry own = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      if (registries.size() > i) {
        registries.set(i, own);
      } else {
        registries.add(own);
      }
      return own;
    }
    CompositeMeterRegistry tagged = new CompositeMeterRegistry();
    tagged.config().commonTags("server", String.valueOf(i));
    tagged.add(shared);
    if (registries.size() <= i) {
      registries.add(null);
    }
    return tagged;
  }

  /**
   * Starts one more server like the first (store, cluster, key), joining the control plane while the
   * cluster runs; returns its index.
   */
  synchronized int addServer(long memoryBytes) throws InterruptedException {
    ServerConfig like = configs.get(0);
    int i = configs.size();
    Path dir = like.dataDir() == null ? null : like.dataDir().resolveSibling("server-" + i);
    ServerConfig cfg = ServerConfig.builder(new HostPort(like.listen().host(), 0), memoryBytes).store(like.store(), dir)
        .cluster(like.cluster()).availabilityInterval(like.availabilityInterval()).ioThreads(1)
        .clusterKey(like.clusterKey()).meta(like.meta()).limits(like.limits()).tls(like.tls()).build();
    VmdServer s = VmdServer.start(cfg, meterRegistryFor(i));
    configs.add(cfg.withListen(s.address()));
    servers.add(s);
    return i;
  }

  /** Stops every server, then every voter; removes the control plane's directory if it made it. */
  @Override
  public synchronized void close() {
    for (int i = 0; i < servers.size(); i++) {
      VmdServer s = servers.set(i, null);
      if (s != null) {
        s.close();
      }
    }
    for (int i = 0; i < metas.size(); i++) {
      MetaServer m = metas.set(i, null);
      if (m != null) {
        m.close();
      }
    }
    if (ownMetaRoot && metaRoot != null) {
      try (Stream<Path> walk = Files.walk(metaRoot)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // a temporary directory: left for the OS
      }
    }
  }

  /** The cluster's settings; {@code C} is what {@link #start} gives: the cluster, or the test kit's wrapper of it. */
  public static final class Builder<C> {
    private final Function<LocalCluster, C> wrap;
    private final List<Long> memories = new ArrayList<>();
    private String store = "slab";
    private Path dataRoot;
    private String cluster = ServerConfig.DEFAULT_CLUSTER;
    private Duration availabilityInterval = Duration.ofMillis(200);
    private String host = "127.0.0.1";
    private PrometheusMeterRegistry sharedRegistry;
    private ClusterKey clusterKey;
    private int voters = 1;
    private Path metaDir;
    private HostPort metaListen;
    private ClusterTls tls;
    private boolean insecure;
    private CertificateAuthority privateCa;

    private Builder(Function<LocalCluster, C> wrap) {
      this.wrap = wrap;
    }

    /** Runs the control plane with this many voters (1 or 3; default 1). */
    public Builder<C> metaVoters(int n) {
      this.voters = n;
      return this;
    }

    /** Runs a single voter on this address (port 0: a free one). */
    public Builder<C> metaListen(HostPort address) {
      this.metaListen = address;
      this.voters = 1;
      return this;
    }

    /** Keeps the control plane's log and snapshots here (default: a temporary directory, deleted at close). */
    public Builder<C> metaDir(Path dir) {
      this.metaDir = dir;
      return this;
    }

    /** Every voter and server speaks mutual TLS with this node certificate, and voters take only signed commands. */
    public Builder<C> tls(ClusterTls nodeTls) {
      this.tls = nodeTls;
      this.privateCa = null;
      this.insecure = false;
      return this;
    }

    /**
     * Mutual TLS with a CA made for this cluster alone, in memory, whose keys die with it; clients get
     * certificates from {@link LocalCluster#clientTls}. For a warm-up or a test: nobody else can join.
     */
    public Builder<C> privateCa() {
      this.privateCa = CertificateAuthority.create(PRIVATE_CA_LIFETIME);
      this.insecure = false;
      this.tls = null;
      return this;
    }

    /**
     * Plaintext links and unsigned commands: anyone who reaches a port is an admin. Never the default:
     * a cluster is given either this or {@link #tls}, as every role is given --certs-dir or --insecure.
     */
    public Builder<C> insecure() {
      this.tls = null;
      this.privateCa = null;
      this.insecure = true;
      return this;
    }

    /** Every server requires this cluster key from its clients. */
    public Builder<C> clusterKey(ClusterKey key) {
      this.clusterKey = key;
      return this;
    }

    /** Registers every server's meters in this one registry, tagged server="i". */
    public Builder<C> metrics(PrometheusMeterRegistry registry) {
      this.sharedRegistry = registry;
      return this;
    }

    /** Adds {@code count} servers of {@code memoryBytes} each. */
    public Builder<C> servers(int count, long memoryBytes) {
      for (int i = 0; i < count; i++) {
        memories.add(memoryBytes);
      }
      return this;
    }

    /** Adds one server of {@code memoryBytes}. */
    public Builder<C> server(long memoryBytes) {
      memories.add(memoryBytes);
      return this;
    }

    /** Persisted Chronicle stores, one directory per server under {@code root}. */
    public Builder<C> persisted(Path root) {
      this.store = "chronicle";
      this.dataRoot = root;
      return this;
    }

    public Builder<C> store(String engine) {
      this.store = engine;
      return this;
    }

    public Builder<C> cluster(String name) {
      this.cluster = name;
      return this;
    }

    public Builder<C> host(String bindHost) {
      this.host = bindHost;
      return this;
    }

    public Builder<C> availabilityInterval(Duration interval) {
      this.availabilityInterval = interval;
      return this;
    }

    public C start() throws InterruptedException {
      if (privateCa != null) {
        List<String> hosts = new ArrayList<>(List.of("127.0.0.1", "localhost"));
        if (!hosts.contains(host)) {
          hosts.add(0, host);
        }
        CertificateAuthority.Issued node = privateCa.issueNode(hosts, PRIVATE_CA_LIFETIME);
        tls = ClusterTls.of(privateCa.certificate(), node.certificate(), node.key());
      }
      if (tls == null && !insecure) {
        throw new IllegalStateException("a cluster needs a node certificate (tls), its own CA (privateCa())"
            + " or an explicit insecure()");
      }
      LocalCluster c = new LocalCluster();
      c.shared = sharedRegistry;
      c.tls = tls;
      c.privateCa = privateCa;
      c.clusterName = cluster;
      try {
        if (metaDir != null) {
          c.metaRoot = metaDir;
        } else {
          c.metaRoot = Files.createTempDirectory("vmd-meta");
          c.ownMetaRoot = true;
        }
        List<HostPort> voterAddresses = metaListen != null && metaListen.port() != 0 ? List.of(metaListen)
            : FreePorts.loopback(voters);
        for (HostPort a : voterAddresses) {
          MetaConfig mc = new MetaConfig(a, voterAddresses, c.metaRoot.resolve("voter-" + a.port()), cluster, 1000, tls);
          c.metaConfigs.add(mc);
          c.metas.add(MetaServer.start(mc));
        }
        for (int i = 0; i < memories.size(); i++) {
          ServerConfig cfg = ServerConfig.builder(new HostPort(host, 0), memories.get(i))
              .store(store, dataRoot == null ? null : dataRoot.resolve("server-" + i)).cluster(cluster)
              .availabilityInterval(availabilityInterval).ioThreads(1).clusterKey(clusterKey).meta(voterAddresses)
              .tls(tls).build();
          VmdServer s = VmdServer.start(cfg, c.meterRegistryFor(i));
          // Pin the chosen port so that a restart comes back at the same address.
          c.configs.add(cfg.withListen(s.address()));
          c.servers.add(s);
        }
      } catch (InterruptedException | RuntimeException e) {
        c.close();
        throw e;
      } catch (IOException e) {
        c.close();
        throw new UncheckedIOException(e);
      }
      return wrap.apply(c);
    }
  }
}
