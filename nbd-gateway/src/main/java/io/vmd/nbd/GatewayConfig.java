package io.vmd.nbd;

import io.vmd.common.HostPort;

/**
 * How an NBD gateway runs.
 *
 * @param listen address to serve NBD on (loopback by default: NBD itself has no authentication)
 * @param defaultExport namespace served to clients that ask for the empty export name, or null
 */
public record GatewayConfig(HostPort listen, String defaultExport) {
  public static final int DEFAULT_PORT = 10809;

  public static GatewayConfig of(HostPort listen) {
    return new GatewayConfig(listen, null);
  }
}
