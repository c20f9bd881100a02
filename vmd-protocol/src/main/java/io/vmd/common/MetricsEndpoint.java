package io.vmd.common;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A role's HTTP endpoint on a small JDK HTTP server: the Prometheus registry's scrape at {@code /metrics},
 * {@code /healthz} (200 while the process serves HTTP: for liveness) and {@code /readyz} (200 once the
 * role is warmed up and has joined, else 503 with the reason: for load balancers and rollouts).
 */
public final class MetricsEndpoint implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MetricsEndpoint.class);
  private static final String TEXT = "text/plain; charset=utf-8";
  private final HttpServer http;
  private final String host;

  private MetricsEndpoint(HttpServer http, String host) {
    this.http = http;
    this.host = host;
  }

  /** An endpoint whose role is ready from the start. */
  public static MetricsEndpoint start(HostPort listen, PrometheusMeterRegistry registry) throws IOException {
    return start(listen, registry, () -> null);
  }

  /** @param notReadyBecause why the role is not ready yet, or null once it is ({@link Readiness}) */
  public static MetricsEndpoint start(HostPort listen, PrometheusMeterRegistry registry,
      Supplier<String> notReadyBecause) throws IOException {
    HttpServer http = HttpServer.create(new InetSocketAddress(listen.host(), listen.port()), 16);
    http.createContext("/metrics", exchange ->
        reply(exchange, 200, "text/plain; version=0.0.4; charset=utf-8", registry.scrape()));
    http.createContext("/healthz", exchange -> reply(exchange, 200, TEXT, "ok\n"));
    http.createContext("/readyz", exchange -> {
      String why = notReadyBecause.get();
      reply(exchange, why == null ? 200 : 503, TEXT, why == null ? "ready\n" : "not ready: " + why + "\n");
    });
    http.setExecutor(Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "vmd-metrics");
      t.setDaemon(true);
      return t;
    }));
    http.start();
    MetricsEndpoint endpoint = new MetricsEndpoint(http, listen.host());
    LOG.info("metrics at {}", endpoint.url());
    return endpoint;
  }

  private static void reply(HttpExchange exchange, int status, String type, String text) throws IOException {
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type);
    exchange.sendResponseHeaders(status, body.length);
    try (OutputStream os = exchange.getResponseBody()) {
      os.write(body);
    }
  }

  /** Where Prometheus scrapes it: {@code http://HOST:PORT/metrics}, HOST as the role was told to listen. */
  public String url() {
    return "http://" + new HostPort(host, port()) + "/metrics";
  }

  public int port() {
    return http.getAddress().getPort();
  }

  @Override
  public void close() {
    http.stop(0);
  }
}
