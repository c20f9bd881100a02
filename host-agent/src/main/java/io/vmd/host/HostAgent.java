package io.vmd.host;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.meta.HostMeta;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import java.io.IOException;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon of a hypervisor host ({@code vmd host}): the NBD gateway its QEMUs reach through a Unix
 * socket, its authenticated API, and its membership in the control plane. It owns namespaces under
 * one owner id in every life, so a restarted agent takes its VMs' swap back at once.
 */
public final class HostAgent implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(HostAgent.class);

  /**
   * How an agent runs.
   *
   * @param name the host's name: its certificate's identity (with TLS) and its name in the cluster
   * @param api where its API listens: an address other hosts and the CLI reach (not a wildcard)
   * @param socket the Unix socket its QEMUs reach its gateway on (0600)
   * @param tls its node certificate (role host), or null with --insecure
   * @param version the build, as Status reports it
   */
  public record Config(String name, HostPort api, Path socket, ClusterTls tls, String version) {}

  private final NbdGateway gateway;
  private final HostApiServer api;
  private final HostMeta registered;

  private HostAgent(NbdGateway gateway, HostApiServer api, HostMeta registered) {
    this.gateway = gateway;
    this.api = api;
    this.registered = registered;
  }

  /** Starts the gateway and the API, then registers the host; {@code client} stays the caller's to close. */
  public static HostAgent start(Config config, VmdClient client, MeterRegistry registry)
      throws IOException, InterruptedException {
    if (config.api().host().equals("0.0.0.0") || config.api().host().equals("::")) {
      throw new IllegalArgumentException("the API address is what other hosts dial, so not a wildcard: give this "
          + "host's address, e.g. --api 10.0.0.5:7420");
    }
    NbdGateway gateway = NbdGateway.start(new GatewayConfig(null, null).withUnixSocket(config.socket()), client,
        registry);
    HostApiServer api = null;
    try {
      api = HostApiServer.start(config.api(), config.tls(), config.version());
      HostMeta registered = client.cluster().registerHost(config.name(), new HostPort(config.api().host(), api.port()));
      LOG.info("host '{}' registered: API {}, {}", registered.name(), registered.api(), registered.status());
      return new HostAgent(gateway, api, registered);
    } catch (IOException | RuntimeException e) {
      if (api != null) {
        api.close();
      }
      gateway.close();
      throw e;
    }
  }

  /** The host as the control plane took it at registration. */
  public HostMeta registered() {
    return registered;
  }

  /** The Unix socket its gateway serves. */
  public Path socket() {
    return gateway.unixSocket();
  }

  @Override
  public void close() throws InterruptedException {
    api.close();
    gateway.close();
  }
}
