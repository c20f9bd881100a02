package io.vmd.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.common.Readiness;
import io.vmd.common.RoleMetrics;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaServer;
import io.vmd.server.ServerConfig;
import io.vmd.server.VmdServer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine;

@Command(name = "server", mixinStandardHelpOptions = true,
    description = "Run a vmd-server: keep pages in this host's spare memory for the cluster.")
final class ServerCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;

  @Option(names = "--listen", defaultValue = "127.0.0.1:7400", paramLabel = "HOST:PORT",
      description = "Address to serve on (default: ${DEFAULT-VALUE}; port 0 picks a free one).")
  String listen;

  @Option(names = "--memory", required = true, paramLabel = "SIZE", converter = Vmd.SizeConverter.class,
      description = "Memory to offer, exactly (K, M, G, T suffixes).")
  long memory;

  @Option(names = "--store", defaultValue = "slab", description = "Page store: slab (default) or chronicle.")
  String store;

  @Option(names = "--data-dir", paramLabel = "DIR",
      description = "Persist pages and namespaces here (chronicle store); a restart keeps them.")
  Path dataDir;

  @Option(names = "--metrics", paramLabel = "HOST:PORT", description = "Serve Prometheus metrics at /metrics.")
  String metrics;

  @Option(names = "--availability-interval", defaultValue = "1s", paramLabel = "DURATION",
      converter = Vmd.DurationConverter.class,
      description = "How often free memory is pushed to clients (default: ${DEFAULT-VALUE}).")
  Duration availabilityInterval;

  @Option(names = "--max-connections", defaultValue = "4096", paramLabel = "N",
      description = "Connections this server keeps open at once; past it new ones are closed at accept "
          + "(default: ${DEFAULT-VALUE}).")
  int maxConnections;

  @Option(names = "--hello-timeout", defaultValue = "10s", paramLabel = "DURATION", converter = Vmd.DurationConverter.class,
      description = "How long a connection may take to say HELLO (and prove the cluster key) before it is closed "
          + "(default: ${DEFAULT-VALUE}).")
  Duration helloTimeout;

  @Option(names = "--io-threads", defaultValue = "0", description = "Event loop threads (0: one per core).")
  int ioThreads;

  @Option(names = "--advertise", paramLabel = "HOST:PORT",
      description = "The address clients should use, when it is not the one listened on (e.g. --listen 0.0.0.0:7400).")
  String advertise;

  @Option(names = "--voter", paramLabel = "HOST:PORT",
      description = "Also run a voter of the control plane in this process, on this address (it must be one of --meta).")
  String voter;

  @Option(names = "--meta-dir", paramLabel = "DIR",
      description = "The voter's Raft log and snapshots (default: DATA_DIR/meta; required without --data-dir).")
  Path metaDir;

  @CommandLine.Mixin WarmUp warmUp;

  @Override
  public Integer call() throws Exception {
    vmd.requireSecurityChoice("server");
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "server");
    // /healthz answers from the start, /readyz once the server serves and has joined.
    Readiness readiness = new Readiness("warming up");
    MetricsEndpoint endpoint = metrics == null ? null : MetricsEndpoint.start(HostPort.parse(metrics), registry,
        readiness);
    MetaServer metaVoter = null;
    VmdServer server;
    try {
      warmUp.server(ioThreads, !vmd.insecure);
      readiness.notReady("joining the control plane");
      List<HostPort> meta = vmd.metaList();
      if (voter != null) {
        Path dir = metaDir != null ? metaDir : dataDir != null ? dataDir.resolve("meta") : null;
        if (dir == null) {
          throw new CommandLine.ParameterException(new CommandLine(this),
              "a voter keeps its log on disk: give --meta-dir DIR (or --data-dir)");
        }
        metaVoter = MetaServer.start(new MetaConfig(HostPort.parse(voter), meta, dir,
            vmd.cluster, 1000, vmd.nodeTls()));
      }
      ServerConfig cfg = ServerConfig.builder(HostPort.parse(listen), memory).store(store, dataDir).cluster(vmd.cluster)
          .availabilityInterval(availabilityInterval).ioThreads(ioThreads).clusterKey(vmd.clusterKey()).meta(meta)
          .advertise(advertise == null ? null : HostPort.parse(advertise))
          .limits(new ServerConfig.Limits(maxConnections, helloTimeout, ServerConfig.Limits.DEFAULT.preAuthFrameBytes()))
          .tls(vmd.nodeTls()).build();
      server = VmdServer.start(cfg, registry);
    } catch (Exception e) {
      Foreground.closeAll(metaVoter, endpoint);
      throw e;
    }
    readiness.ready();
    return Foreground.run("vmd-server listening on " + server.address() + " (slot " + server.member().slot() + ")"
        + (endpoint == null ? "" : ", metrics on " + endpoint.url()),
        endpoint, server, metaVoter);
  }
}
