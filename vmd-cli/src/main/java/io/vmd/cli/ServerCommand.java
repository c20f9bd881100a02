package io.vmd.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.server.ServerConfig;
import io.vmd.server.VmdServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

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

  @Option(names = "--io-threads", defaultValue = "0", description = "Event loop threads (0: one per core).")
  int ioThreads;

  @Override
  public Integer call() throws Exception {
    ServerConfig cfg = new ServerConfig(HostPort.parse(listen), memory, store, dataDir, vmd.cluster,
        availabilityInterval, ioThreads, vmd.clusterKey());
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    VmdServer server = VmdServer.start(cfg, registry);
    MetricsEndpoint endpoint;
    try {
      endpoint = metrics == null ? null : MetricsEndpoint.start(HostPort.parse(metrics), registry);
    } catch (java.io.IOException | RuntimeException e) {
      server.close();
      throw e;
    }
    return Foreground.run("vmd-server listening on " + server.address()
        + (endpoint == null ? "" : ", metrics on http://" + HostPort.parse(metrics).host() + ":" + endpoint.port() + "/metrics"),
        endpoint, server);
  }
}
