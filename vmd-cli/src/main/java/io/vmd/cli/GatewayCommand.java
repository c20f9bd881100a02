package io.vmd.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.common.Readiness;
import io.vmd.common.RoleMetrics;
import io.vmd.common.SocketActivation;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

@Command(name = "gateway", mixinStandardHelpOptions = true, description = {
    "Run an NBD gateway: every namespace of the cluster becomes an NBD export.",
    "Under systemd's socket activation (a vmd-gateway.socket unit, or systemd-socket-activate; LISTEN_FDS and "
        + "LISTEN_PID set, as for nbdkit) it serves the TCP and Unix sockets it is given instead of --listen and "
        + "--unix, so the sockets stay open across a restart and clients that connect meanwhile wait."})
final class GatewayCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Option(names = "--listen", defaultValue = "127.0.0.1:10809", paramLabel = "HOST:PORT",
      description = "NBD address (default: ${DEFAULT-VALUE}; NBD has no authentication, keep it on loopback), "
          + "or none with --unix.")
  String listen;

  @Option(names = "--unix", paramLabel = "PATH",
      description = "Serve NBD on this Unix socket as well (made 0600: only this user may connect), e.g. "
          + "/run/vmd/nbd.sock; QEMU reaches it as nbd+unix:///NAMESPACE?socket=PATH.")
  Path unix;

  @Option(names = "--metrics", paramLabel = "HOST:PORT", description = "Serve Prometheus metrics at /metrics.")
  String metrics;

  @Option(names = "--default-export", paramLabel = "NAMESPACE",
      description = "Namespace served to clients that ask for the empty export name.")
  String defaultExport;

  @Option(names = "--rereplicate-after", defaultValue = "5s", converter = Vmd.DurationConverter.class,
      paramLabel = "DURATION",
      description = "How long a server must be down before its pages get new copies (default: ${DEFAULT-VALUE}).")
  Duration rereplicateAfter;

  @Option(names = "--rereplicate-rate", defaultValue = "4096", paramLabel = "PAGES/S",
      description = "Most pages copied per second to restore replicas (default: ${DEFAULT-VALUE}).")
  int rereplicateRate;

  @Option(names = "--tls-verify-peer",
      description = "NBD clients must show a certificate of the cluster's CA (ca.crt in --certs-dir) after STARTTLS, "
          + "and open and list only namespaces granted to its name (vmd ns grant); admins see all. Needs --tls-cert.")
  boolean tlsVerifyPeer;

  @Option(names = "--tls-cert", paramLabel = "PEM",
      description = "Certificate (chain) for NBD_OPT_STARTTLS; with --tls-key, every client must use TLS.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "PEM", description = "The certificate's PKCS#8 private key.")
  Path tlsKey;

  @Option(names = "--owner-id", paramLabel = "NAME",
      description = "Own namespaces as NAME in every life of this gateway (default: a new id per start). Restarted "
          + "with the same one, after a crash or an upgrade, it takes its namespaces back at once instead of "
          + "waiting out its old leases, and QEMU's NBD client reconnects; each take-back moves the epoch on, so "
          + "nothing the old process still sends is written. Give every gateway its own.")
  String ownerId;

  @Option(names = "--io-threads", defaultValue = "0", description = "Event loop threads (0: one per core).")
  int ioThreads;

  @CommandLine.Mixin GatewayLimits limits;

  @CommandLine.Mixin WarmUp warmUp;

  @Override
  public Integer call() throws Exception {
    vmd.requireSecurityChoice("gateway");
    List<SocketActivation.Listener> activated = SocketActivation.inherited();
    if (!activated.isEmpty() && (spec.commandLine().getParseResult().hasMatchedOption("--listen") || unix != null)) {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "socket activation passed " + activated.size() + " socket(s): give neither --listen nor --unix");
    }
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "gateway");
    // /healthz answers from the start, /readyz once the gateway serves.
    Readiness readiness = new Readiness("warming up");
    MetricsEndpoint endpoint = metrics == null ? null : MetricsEndpoint.start(HostPort.parse(metrics), registry,
        readiness);
    VmdClient client = null;
    NbdGateway gateway;
    try {
      warmUp.gateway(ioThreads, !vmd.insecure);
      readiness.notReady("connecting to the control plane");
      int threads = ioThreads > 0 ? ioThreads : Runtime.getRuntime().availableProcessors();
      client = ownerId != null ? vmd.connectAs(threads, ownerId) : vmd.connect(threads, "gateway");
      gateway = NbdGateway.start(limits.apply(new GatewayConfig(
          "none".equals(listen) || !activated.isEmpty() ? null : HostPort.parse(listen), defaultExport)
          .withUnixSocket(unix).withActivated(activated)
          .withRereplication(rereplicateAfter, rereplicateRate).withTls(tlsCert, tlsKey)
          .withVerifyPeer(tlsVerifyPeer ? vmd.caCertificate() : null)), client, registry);
    } catch (Exception e) {
      Foreground.closeAll(client, endpoint);
      throw e;
    }
    readiness.ready();
    String on = gateway.address() == null ? "unix:" + gateway.unixSocket()
        : gateway.address() + (gateway.unixSocket() == null ? "" : " and unix:" + gateway.unixSocket());
    return Foreground.run("NBD gateway listening on " + on + " (owner id " + client.ownerId() + ")"
        + (endpoint == null ? "" : ", metrics on " + endpoint.url()), endpoint, gateway, client);
  }
}
