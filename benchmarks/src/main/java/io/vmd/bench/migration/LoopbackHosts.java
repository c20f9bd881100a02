package io.vmd.bench.migration;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.meta.FreePorts;
import io.vmd.nbd.ExportMetrics;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.LocalCluster;
import java.util.List;

/**
 * Everything on this machine's loopback, the cluster and both gateways in the bench's own JVM; the
 * migration's bandwidth is QEMU's max-bandwidth.
 */
final class LoopbackHosts implements GuestHosts {
  private final LocalCluster cluster;
  private final VmdClient sourceHost;
  private final VmdClient destHost;
  private final VmdClient orchestrator;
  private final NbdGateway[] gateways;

  private LoopbackHosts(LocalCluster cluster, VmdClient sourceHost, VmdClient destHost, VmdClient orchestrator,
      NbdGateway sourceGw, NbdGateway destGw) {
    this.cluster = cluster;
    this.sourceHost = sourceHost;
    this.destHost = destHost;
    this.orchestrator = orchestrator;
    this.gateways = new NbdGateway[] {null, sourceGw, destGw};
  }

  /** Two memory servers of {@code serverBytes} each, and a gateway per side. */
  static LoopbackHosts start(long serverBytes) throws Exception {
    LocalCluster cluster = LocalCluster.builder().servers(2, serverBytes).insecure().start();
    VmdClient sourceHost = null;
    VmdClient destHost = null;
    VmdClient orchestrator = null;
    NbdGateway sourceGw = null;
    try {
      sourceHost = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()), "gateway");
      destHost = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()), "gateway");
      orchestrator = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()), "cli");
      HostPort any = new HostPort("127.0.0.1", 0);
      sourceGw = NbdGateway.start(GatewayConfig.of(any), sourceHost, new SimpleMeterRegistry());
      NbdGateway destGw = NbdGateway.start(GatewayConfig.of(any), destHost, new SimpleMeterRegistry());
      return new LoopbackHosts(cluster, sourceHost, destHost, orchestrator, sourceGw, destGw);
    } catch (Exception | Error e) {
      closeAll(sourceGw, orchestrator, destHost, sourceHost, cluster);
      throw e;
    }
  }

  @Override
  public VmdClient orchestrator() {
    return orchestrator;
  }

  @Override
  public NbdEndpoint gateway(int side) {
    return NbdEndpoint.tcp(gateways[side].address());
  }

  @Override
  public List<String> command(int side) {
    return List.of();
  }

  @Override
  public HostPort incoming() {
    return FreePorts.loopback(1).get(0);
  }

  @Override
  public long pagesIn(int side, String namespace) {
    ExportMetrics m = gateways[side].metrics(namespace);
    return m == null ? 0 : (long) m.pagesIn();
  }

  @Override
  public long pagesOut(int side, String namespace) {
    ExportMetrics m = gateways[side].metrics(namespace);
    return m == null ? 0 : (long) m.pagesOut();
  }

  @Override
  public String describe() {
    return "both QEMUs, their gateways and two memory servers on loopback";
  }

  @Override
  public void close() {
    closeAll(gateways[2], gateways[1], orchestrator, destHost, sourceHost, cluster);
  }

  private static void closeAll(AutoCloseable... all) {
    for (AutoCloseable c : all) {
      if (c != null) {
        try {
          c.close();
        } catch (Exception e) {
          // the rest still close
        }
      }
    }
  }
}
