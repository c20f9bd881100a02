package io.vmd.nbd;

import io.vmd.common.HostPort;
import java.time.Duration;

/**
 * How an NBD gateway runs.
 *
 * @param listen address to serve NBD on (loopback by default: NBD itself has no authentication)
 * @param defaultExport namespace served to clients that ask for the empty export name, or null
 * @param rereplicateAfter how long a server must be down before its pages get new copies elsewhere
 * @param rereplicatePagesPerSecond at most this many pages copied per second for that
 * @param tlsCert PEM certificate chain for NBD_OPT_STARTTLS, or null (then TLS is refused)
 * @param tlsKey its PKCS#8 PEM private key; with both set, clients must start TLS before anything else
 */
public record GatewayConfig(HostPort listen, String defaultExport, Duration rereplicateAfter,
    int rereplicatePagesPerSecond, java.nio.file.Path tlsCert, java.nio.file.Path tlsKey) {
  public static final int DEFAULT_PORT = 10809;
  public static final Duration DEFAULT_REREPLICATE_AFTER = Duration.ofSeconds(5);
  public static final int DEFAULT_REREPLICATE_RATE = 4096;

  public GatewayConfig(HostPort listen, String defaultExport) {
    this(listen, defaultExport, DEFAULT_REREPLICATE_AFTER, DEFAULT_REREPLICATE_RATE, null, null);
  }

  public static GatewayConfig of(HostPort listen) {
    return new GatewayConfig(listen, null);
  }

  public GatewayConfig withRereplication(Duration after, int pagesPerSecond) {
    return new GatewayConfig(listen, defaultExport, after, pagesPerSecond, tlsCert, tlsKey);
  }

  /** Serves NBD_OPT_STARTTLS with this certificate and key, and requires it of every client. */
  public GatewayConfig withTls(java.nio.file.Path cert, java.nio.file.Path key) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, cert, key);
  }
}
