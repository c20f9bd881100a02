package io.vmd.nbd;

import io.vmd.common.HostPort;
import io.vmd.common.Sizes;
import io.vmd.common.SocketActivation;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How an NBD gateway runs.
 *
 * @param listen address to serve NBD on (loopback by default: NBD itself has no authentication)
 * @param defaultExport namespace served to clients that ask for the empty export name, or null
 * @param rereplicateAfter how long a server must be down before its pages get new copies elsewhere
 * @param rereplicatePagesPerSecond at most this many pages copied per second for that
 * @param tlsCert PEM certificate chain for NBD_OPT_STARTTLS, or null (then TLS is refused)
 * @param tlsKey its PKCS#8 PEM private key; with both set, clients must start TLS before anything else
 * @param connectionBudget bytes one NBD connection may hold: request payloads received and reply bytes
 *     not yet taken by the client; past it the connection stops reading until half of it is free
 * @param totalBudget the same for all connections together
 * @param handshakeTimeout how long a client has from connecting to the end of option negotiation
 * @param verifyPeerCa with TLS: the CA (PEM) whose client certificates are required; a client then
 *     opens and lists only the namespaces granted to its certificate's name (admins: all). Null: any
 *     TLS client is served
 * @param unixSocket where to serve NBD on a Unix socket as well (nbd+unix; QEMU's server.type=unix), or
 *     null. The socket is made 0600: only the gateway's own user (and root) may connect, so its file
 *     mode is the access control of local VMs
 * @param activated listening sockets systemd passed in (socket activation), served instead of binding
 *     {@code listen} and {@code unixSocket}; empty for none
 */
public record GatewayConfig(HostPort listen, String defaultExport, Duration rereplicateAfter,
    int rereplicatePagesPerSecond, Path tlsCert, Path tlsKey,
    long connectionBudget, long totalBudget, Duration handshakeTimeout, Path verifyPeerCa, Path unixSocket,
    List<SocketActivation.Listener> activated) {
  public static final int DEFAULT_PORT = 10809;
  public static final Duration DEFAULT_REREPLICATE_AFTER = Duration.ofSeconds(5);
  public static final int DEFAULT_REREPLICATE_RATE = 4096;
  public static final long DEFAULT_CONNECTION_BUDGET = 64L << 20;
  public static final long DEFAULT_TOTAL_BUDGET = 512L << 20;
  public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(30);

  public GatewayConfig {
    if (connectionBudget < 2L * NbdSession.PIECE) {
      throw new IllegalArgumentException("the per-connection budget must be at least "
          + Sizes.format(2L * NbdSession.PIECE) + " (two pieces of a large request)");
    }
    if (totalBudget < connectionBudget) {
      throw new IllegalArgumentException("the gateway's budget (" + Sizes.format(totalBudget)
          + ") must be at least the per-connection budget (" + Sizes.format(connectionBudget) + ")");
    }
    if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
      throw new IllegalArgumentException("the handshake timeout must be positive");
    }
    activated = List.copyOf(activated);
    if (verifyPeerCa != null && tlsCert == null) {
      throw new IllegalArgumentException("verifying NBD clients' certificates needs TLS: give --tls-cert and --tls-key");
    }
  }

  public GatewayConfig(HostPort listen, String defaultExport) {
    this(listen, defaultExport, DEFAULT_REREPLICATE_AFTER, DEFAULT_REREPLICATE_RATE, null, null,
        DEFAULT_CONNECTION_BUDGET, DEFAULT_TOTAL_BUDGET, DEFAULT_HANDSHAKE_TIMEOUT, null, null, List.of());
  }

  public static GatewayConfig of(HostPort listen) {
    return new GatewayConfig(listen, null);
  }

  public GatewayConfig withRereplication(Duration after, int pagesPerSecond) {
    return new GatewayConfig(listen, defaultExport, after, pagesPerSecond, tlsCert, tlsKey, connectionBudget,
        totalBudget, handshakeTimeout, verifyPeerCa, unixSocket, activated);
  }

  /** Serves NBD_OPT_STARTTLS with this certificate and key, and requires it of every client. */
  public GatewayConfig withTls(Path cert, Path key) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, cert, key,
        connectionBudget, totalBudget, handshakeTimeout, verifyPeerCa, unixSocket, activated);
  }

  /** Memory budgets: bytes per NBD connection and for the whole gateway. */
  public GatewayConfig withBudgets(long perConnection, long total) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, tlsCert, tlsKey,
        perConnection, total, handshakeTimeout, verifyPeerCa, unixSocket, activated);
  }

  public GatewayConfig withHandshakeTimeout(Duration timeout) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, tlsCert, tlsKey,
        connectionBudget, totalBudget, timeout, verifyPeerCa, unixSocket, activated);
  }

  /** Requires a client certificate of {@code ca} (PEM) after STARTTLS, and checks grants (see the record). */
  public GatewayConfig withVerifyPeer(Path ca) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, tlsCert, tlsKey,
        connectionBudget, totalBudget, handshakeTimeout, ca, unixSocket, activated);
  }

  /** Serves NBD on this Unix socket too; {@code listen} may then be null (no TCP). */
  public GatewayConfig withUnixSocket(Path socket) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, tlsCert, tlsKey,
        connectionBudget, totalBudget, handshakeTimeout, verifyPeerCa, socket, activated);
  }

  /** Serves the listening sockets systemd passed in ({@link SocketActivation}) instead of binding any. */
  public GatewayConfig withActivated(List<SocketActivation.Listener> listeners) {
    return new GatewayConfig(listen, defaultExport, rereplicateAfter, rereplicatePagesPerSecond, tlsCert, tlsKey,
        connectionBudget, totalBudget, handshakeTimeout, verifyPeerCa, unixSocket, listeners);
  }
}
