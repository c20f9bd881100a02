package io.vmd.bench.fault;

import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.load.DirectDriver;
import io.vmd.load.Driver;
import io.vmd.load.NbdLoadClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * VMD as it is deployed: a control-plane voter, two {@code vmd server} processes and (for vmd-nbd) a
 * {@code vmd gateway} process, each a JVM of its own started with the harness's launcher, on
 * 127.0.0.1. The harness's JVM is only the client: it creates the namespace and, for vmd-direct,
 * drives it through its own {@link VmdClient}.
 */
final class DeployedStack implements Target {
  static final String NAMESPACE = "bench";

  private final Path dir;
  private final List<VmdProcess> processes;
  private final VmdClient client;
  private final HostPort gateway;

  private DeployedStack(Path dir, List<VmdProcess> processes, VmdClient client, HostPort gateway) {
    this.dir = dir;
    this.processes = processes;
    this.client = client;
    this.gateway = gateway;
  }

  /**
   * @param launcher java, its options, -cp, the main class: how this harness itself was started
   * @param jvmOptions more options for the VMD processes (not the harness)
   * @param tls every link runs mutual TLS and the namespace's pages are sealed: a CA and seal key made
   *     here, a node certificate for the voter and the servers, a gateway certificate for the gateway
   *     and an admin one for the harness; else every process runs --insecure
   * @param unixSocket the gateway serves a Unix socket as well (builds before it had none: the A/B baseline)
   */
  static DeployedStack start(List<String> launcher, List<String> jvmOptions, long region, int replicas, boolean viaNbd,
      boolean tls, boolean unixSocket) throws Exception {
    Path dir = Files.createTempDirectory("vmd-bench-");
    List<VmdProcess> started = new ArrayList<>();
    VmdClient client = null;
    try {
      List<String> serverTls = new ArrayList<>(List.of("--insecure"));
      List<String> gatewayTls = new ArrayList<>(List.of("--insecure"));
      ClusterTls harnessTls = null;
      byte[] sealKey = null;
      if (tls) {
        CertsDir certs = certificates(dir.resolve("certs"));
        serverTls = List.of("--certs-dir", certs.path().toString());
        gatewayTls = List.of("--certs-dir", certs.path().toString(), "--identity", "gateway");
        harnessTls = ClusterTls.load(certs, "client.admin");
        sealKey = certs.readSealKey();
      }
      String meta = "127.0.0.1:" + ExternalProcess.freePort();
      List<String> metaArgs = new ArrayList<>(List.of("meta", "--listen", meta, "--data-dir",
          dir.resolve("meta").toString()));
      metaArgs.addAll(serverTls);
      int metaMetrics = ExternalProcess.freePort();
      metaArgs.addAll(List.of("--metrics", "127.0.0.1:" + metaMetrics));
      started.add(VmdProcess.launch("meta", launcher, jvmOptions, dir, VmdProcess.META_READY, metaArgs.toArray(String[]::new))
          .withMetrics(metaMetrics).awaitReady());
      // Each server can hold the whole region: with R=2 both hold every page.
      String memory = ((region >> 20) + 64) + "M";
      List<VmdProcess> servers = new ArrayList<>();
      for (int i = 1; i <= 2; i++) {
        List<String> args = new ArrayList<>(List.of("server", "--meta", meta, "--listen", "127.0.0.1:0", "--memory",
            memory));
        args.addAll(serverTls);
        int metrics = ExternalProcess.freePort();
        args.addAll(List.of("--metrics", "127.0.0.1:" + metrics));
        servers.add(VmdProcess.launch("server-" + i, launcher, jvmOptions, dir, VmdProcess.SERVER_READY,
            args.toArray(String[]::new)).withMetrics(metrics));
      }
      started.addAll(servers);
      for (VmdProcess s : servers) {
        s.awaitReady();
      }
      client = VmdClient.connect(ClientConfig.of(HostPort.parseList(meta))
          .withIoThreads(Runtime.getRuntime().availableProcessors()).withTls(harnessTls).withSealKey(sealKey));
      VmdProcess.awaitServers(client, 2);
      client.namespaces().create(NAMESPACE, region, replicas);
      HostPort gw = null;
      if (viaNbd) {
        List<String> args = new ArrayList<>(List.of("gateway", "--listen", "127.0.0.1:0", "--meta", meta));
        if (unixSocket) {
          // The Unix socket a host's own QEMUs use, beside TCP.
          args.addAll(List.of("--unix", dir.resolve("nbd.sock").toString()));
        }
        args.addAll(gatewayTls);
        int metrics = ExternalProcess.freePort();
        args.addAll(List.of("--metrics", "127.0.0.1:" + metrics));
        VmdProcess g = VmdProcess.launch("gateway", launcher, jvmOptions, dir, VmdProcess.GATEWAY_READY,
            args.toArray(String[]::new)).withMetrics(metrics).awaitReady();
        started.add(g);
        gw = HostPort.parse(g.ready(1));
      }
      return new DeployedStack(dir, started, client, gw);
    } catch (Exception e) {
      if (client != null) {
        client.close();
      }
      stop(started);
      delete(dir);
      throw e;
    }
  }

  /** A CA, a node certificate for 127.0.0.1, and gateway and admin client certificates, in {@code at}. */
  private static CertsDir certificates(Path at) throws IOException {
    CertsDir certs = new CertsDir(at);
    certs.makeCluster(List.of("127.0.0.1"), Duration.ofDays(1),
        List.of(new Identity("gateway", Role.GATEWAY), new Identity("admin", Role.ADMIN)));
    return certs;
  }

  /** What each process said of its warm-up before it served (how long, or why it was skipped). */
  List<String> warmUps() {
    List<String> lines = new ArrayList<>();
    for (VmdProcess p : processes) {
      for (String l : p.logLines("warmed up|warm-up skipped")) {
        lines.add(p.name() + ": " + l);
      }
    }
    return lines;
  }

  @Override
  public String name() {
    return gateway != null ? "vmd-nbd" : "vmd-direct";
  }

  @Override
  public Driver driver() throws Exception {
    return gateway != null
        ? new NbdLoadClient(gateway.host(), gateway.port(), NAMESPACE)
        : new DirectDriver(client.attach(NAMESPACE, true));
  }

  @Override
  public String nbdUri() {
    return gateway == null ? null : "nbd://" + gateway.host() + ":" + gateway.port() + "/" + NAMESPACE;
  }

  @Override
  public String nbdUnixUri() {
    return gateway == null ? null : NbdEndpoint.unix(dir.resolve("nbd.sock")).uri(NAMESPACE);
  }

  @Override
  public List<Watched> processes() {
    List<Watched> w = new ArrayList<>();
    for (VmdProcess p : processes) {
      if (!p.alive()) {
        throw new IllegalStateException(p.name() + " died; its log:\n" + p.logTail());
      }
      w.add(new Watched(p.name(), p.pid(), p.safepoints(), p::allocatedBytes));
    }
    return w;
  }

  @Override
  public void close() throws Exception {
    client.close();
    stop(processes);
    delete(dir);
  }

  /** The gateway first, the control plane last, as an operator would take it down. */
  private static void stop(List<VmdProcess> processes) throws InterruptedException {
    for (int i = processes.size() - 1; i >= 0; i--) {
      processes.get(i).close();
    }
  }

  private static void delete(Path dir) {
    try (Stream<Path> all = Files.walk(dir)) {
      all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a temp dir left behind
    }
  }
}
