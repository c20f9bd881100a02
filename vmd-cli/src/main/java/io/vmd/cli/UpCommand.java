package io.vmd.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.common.RoleMetrics;
import io.vmd.common.Sizes;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.LocalCluster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

@Command(name = "up", mixinStandardHelpOptions = true,
    description = {"Run a whole VMD in this process: servers, an NBD gateway and a namespace ready to attach.",
      "Stops cleanly on Ctrl-C."})
final class UpCommand implements Callable<Integer> {
  @CommandLine.ParentCommand Vmd vmd;

  @Option(names = "--servers-count", defaultValue = "2", description = "Servers to start (default: ${DEFAULT-VALUE}).")
  int serverCount;

  @Option(names = "--server-memory", defaultValue = "1G", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "Memory of each server (default: ${DEFAULT-VALUE}); taken only as pages are written.")
  long serverMemory;

  @Option(names = "--listen", defaultValue = "127.0.0.1:10809", paramLabel = "HOST:PORT",
      description = "NBD address (default: ${DEFAULT-VALUE}).")
  String listen;

  @Option(names = "--namespace", defaultValue = "vm1", description = "Namespace to create (default: ${DEFAULT-VALUE}).")
  String namespace;

  @Option(names = "--size", defaultValue = "1G", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "Size of the namespace (default: ${DEFAULT-VALUE}).")
  long size;

  @Option(names = "--replicas", paramLabel = "R",
      description = "Copies of each page (default: 2 with two or more servers, else 1).")
  Integer replicas;

  @Option(names = "--metrics", defaultValue = "127.0.0.1:9100", paramLabel = "HOST:PORT",
      description = "Prometheus metrics of every part (default: ${DEFAULT-VALUE}; 'none' to disable).")
  String metrics;

  @Option(names = "--store", defaultValue = "slab", description = "Page store of the servers: slab or chronicle.")
  String store;

  @CommandLine.Mixin GatewayLimits limits;

  @Option(names = "--meta-listen", defaultValue = "127.0.0.1:7300", paramLabel = "HOST:PORT",
      description = "The control plane's single voter (default: ${DEFAULT-VALUE}; port 0 picks a free one).")
  String metaListen;

  @Override
  public Integer call() throws Exception {
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "up");
    ClusterKey key = vmd.clusterKey();
    Path certs = ownCertificates();
    CertsDir dir = new CertsDir(certs);
    LocalCluster cluster = LocalCluster.builder().servers(serverCount, serverMemory).store(store)
        .cluster(vmd.cluster).metaListen(HostPort.parse(metaListen)).metrics(registry).clusterKey(key)
        .tls(ClusterTls.load(dir, "node")).start();
    VmdClient client = null;
    NbdGateway gateway = null;
    MetricsEndpoint endpoint = null;
    try {
      ClientConfig config = ClientConfig.of(cluster.metaAddresses()).withCluster(vmd.cluster).withClusterKey(key)
          .withSealKey(dir.readSealKey());
      // Namespaces are the admin's to create; the gateway only claims them.
      try (VmdClient admin = VmdClient.connect(config.withIoThreads(1).withTls(ClusterTls.load(dir, "client.admin")))) {
        admin.namespaces().create(namespace, size, replicas != null ? replicas : Math.min(2, serverCount));
      }
      client = VmdClient.connect(config.withIoThreads(Runtime.getRuntime().availableProcessors())
          .withTls(ClusterTls.load(dir, "client.gateway")), "gateway");
      gateway = NbdGateway.start(limits.apply(new GatewayConfig(HostPort.parse(listen), namespace)), client, registry);
      if (!"none".equals(metrics)) {
        endpoint = MetricsEndpoint.start(HostPort.parse(metrics), registry);
      }
    } catch (Exception e) {
      Foreground.closeAll(endpoint, gateway, client, cluster);
      throw e;
    }
    HostPort nbd = gateway.address();
    String url = "nbd://" + nbd + "/" + namespace;
    System.out.printf("VMD is up: control plane on %s, %d servers of %s, NBD gateway on %s, namespace '%s' of %s.%n",
        cluster.metaFlag(), serverCount, Sizes.format(serverMemory), nbd, namespace, Sizes.format(size));
    System.out.println("Attach it:");
    System.out.println("  nbdinfo " + url);
    System.out.println("  nbd-client " + nbd.host() + " " + nbd.port() + " -N " + namespace + " /dev/nbd0"
        + "   # then: mkswap /dev/nbd0 && swapon /dev/nbd0");
    System.out.println("  qemu-system-x86_64 ... -drive file=" + url + ",format=raw,if=virtio");
    System.out.println("Administer it: VMD_META=" + cluster.metaFlag() + " VMD_CERTS_DIR=" + certs + " bin/vmd ns info "
        + namespace);
    if (endpoint != null) {
      System.out.println("Metrics: " + endpoint.url());
    }
    AutoCloseable forgetCerts = certs.equals(vmd.certsDir) ? null : () -> deleteTree(certs);
    return Foreground.run("Press Ctrl-C to stop.", endpoint, gateway, client, cluster, forgetCerts,
        () -> System.err.println("VMD stopped."));
  }

  /**
   * The embedded cluster's own CA and certificates, so that it runs with TLS between its gateway and
   * servers: in --certs-dir when given and empty of a CA, else a new private directory (0700). The
   * admin certificate (client.admin) lets commands reach the servers too.
   */
  private Path ownCertificates() throws IOException {
    Path at = vmd.certsDir != null && !vmd.certsDir.toString().isBlank() ? vmd.certsDir
        : Files.createTempDirectory("vmd-up-certs-");
    CertsDir dir = new CertsDir(at);
    String warning = dir.create();
    if (warning != null) {
      System.err.println(warning);
    }
    if (Files.exists(dir.caCert())) {
      return at; // made by an earlier vmd up, or by hand: used as it is
    }
    HostPort nbd = HostPort.parse(listen);
    List<String> hosts = new ArrayList<>(List.of("127.0.0.1", "localhost"));
    if (!hosts.contains(nbd.host()) && !nbd.host().isBlank()) {
      hosts.add(nbd.host());
    }
    dir.makeCluster(hosts, Duration.ofDays(365),
        List.of(new Identity("gateway", Role.GATEWAY), new Identity("admin", Role.ADMIN)));
    return at;
  }

  /** The private certificates directory of a cluster that is gone. */
  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
