package io.vmd.bench.fault;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.load.DirectDriver;
import io.vmd.load.Driver;
import io.vmd.load.NbdLoadClient;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.LocalCluster;

/** Two servers, a client and (for vmd-nbd) a gateway, in this JVM on loopback ports. */
final class VmdStack implements Target {
  private final LocalCluster cluster;
  private final VmdClient client;
  private final NbdGateway gateway;
  private final Namespace direct;

  private VmdStack(LocalCluster cluster, VmdClient client, NbdGateway gateway, Namespace direct) {
    this.cluster = cluster;
    this.client = client;
    this.gateway = gateway;
    this.direct = direct;
  }

  static VmdStack start(long region, int replicas, boolean viaNbd) throws Exception {
    LocalCluster cluster = LocalCluster.builder().servers(2, region).insecure().start();
    VmdClient client = null;
    try {
      client = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()).withIoThreads(Runtime.getRuntime().availableProcessors()));
      client.namespaces().create("bench", region, replicas);
      if (viaNbd) {
        NbdGateway gw = NbdGateway.start(new GatewayConfig(new HostPort("127.0.0.1", 0), "bench"), client,
            new SimpleMeterRegistry());
        return new VmdStack(cluster, client, gw, null);
      }
      return new VmdStack(cluster, client, null, client.attach("bench", true));
    } catch (Exception e) {
      if (client != null) {
        client.close();
      }
      cluster.close();
      throw e;
    }
  }

  public String name() {
    return gateway != null ? "vmd-nbd" : "vmd-direct";
  }

  public Driver driver() throws Exception {
    return gateway != null
        ? new NbdLoadClient("127.0.0.1", gateway.address().port(), "bench")
        : new DirectDriver(direct);
  }

  public String nbdUri() {
    return gateway == null ? null : "nbd://127.0.0.1:" + gateway.address().port() + "/bench";
  }

  public void close() {
    if (gateway != null) {
      gateway.close();
    }
    client.close();
    cluster.close();
  }
}
