package io.vmd.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.common.RoleMetrics;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaServer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "meta", mixinStandardHelpOptions = true, description = {
    "Run a voter of the control plane (membership, namespaces, ownership): an Apache Ratis group of 1, 3 "
        + "or 5 voters. Give every voter the same --peers list; servers, gateways and the CLI find the group "
        + "with --meta (any of the voters)."})
final class MetaCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;

  @Option(names = "--listen", required = true, paramLabel = "HOST:PORT",
      description = "This voter's address; it names the voter, so give it as it appears in --peers.")
  String listen;

  @Option(names = "--peers", paramLabel = "HOST:PORT,...",
      description = "Every voter of the group, this one included (default: this one alone).")
  String peers;

  @Option(names = "--data-dir", required = true, paramLabel = "DIR",
      description = "Where the Raft log and snapshots are kept; a restart resumes from them.")
  Path dataDir;

  @Option(names = "--snapshot-every", defaultValue = "1000", paramLabel = "N",
      description = "Log entries between snapshots (default: ${DEFAULT-VALUE}).")
  long snapshotEvery;

  @Option(names = "--metrics", paramLabel = "HOST:PORT",
      description = "Serve Prometheus metrics at /metrics: what the voter refused (vmd_auth_failures_total) and "
          + "its certificate's expiry.")
  String metrics;

  @Override
  public Integer call() throws Exception {
    vmd.requireSecurityChoice("control-plane voter");
    HostPort self = HostPort.parse(listen);
    List<HostPort> group = peers == null || peers.isBlank() ? List.of(self) : HostPort.parseList(peers);
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "meta");
    MetaServer voter = MetaServer.start(new MetaConfig(self, group, dataDir, vmd.cluster, snapshotEvery, vmd.nodeTls()),
        registry);
    MetricsEndpoint endpoint;
    try {
      endpoint = metrics == null ? null : MetricsEndpoint.start(HostPort.parse(metrics), registry,
          voter::notReadyBecause);
    } catch (IOException e) {
      voter.close();
      throw e;
    }
    return Foreground.run("control-plane voter on " + self + " of " + group + (endpoint == null ? ""
        : ", metrics on " + endpoint.url()), endpoint, voter);
  }
}
