package io.vmd.migration.wss;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * A VM's swap-ins as a gateway in another process counts them: its Prometheus endpoint's
 * {@code vmd_gateway_pages_in_total{namespace="NS"}}, times the page size. The working-set tracker of a
 * VM on another host reads its gateway this way; in the gateway's own process use its counters
 * directly.
 */
public final class GatewayPageIns implements SwapRateSource {
  static final String METRIC = "vmd_gateway_pages_in_total";
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final URI metrics;
  private final String namespace;

  /** {@code metrics}: the gateway's endpoint, e.g. {@code http://127.0.0.1:9100/metrics}. */
  public GatewayPageIns(URI metrics, String namespace) {
    this.metrics = metrics;
    this.namespace = namespace;
  }

  /**
   * Bytes swapped in so far; 0 before the namespace's export is first opened (the gateway has no
   * counter for it yet).
   *
   * @throws UncheckedIOException when the endpoint does not answer (the tracker logs it and tries at
   *     its next step rather than deciding on a guess)
   */
  @Override
  public long swappedBytes() {
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(metrics).timeout(Duration.ofSeconds(5)).GET().build(),
          HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) {
        throw new IOException(metrics + " answered HTTP " + r.statusCode());
      }
      return pagesIn(r.body(), namespace) * 4096;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the gateway's page-ins at " + metrics + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new UncheckedIOException(new IOException("interrupted"));
    }
  }

  /** The namespace's page-ins in a Prometheus text exposition; 0 when it has no sample. */
  static long pagesIn(String exposition, String namespace) {
    String label = "namespace=\"" + namespace + "\"";
    for (String line : exposition.split("\n")) {
      if (line.startsWith(METRIC + "{") && line.contains(label)) {
        String value = line.substring(line.lastIndexOf('}') + 1).trim().split("\\s+")[0];
        return (long) Double.parseDouble(value);
      }
    }
    return 0;
  }
}
