package io.vmd.nbd;

import io.vmd.common.HostPort;

/**
 * How an NBD gateway runs.
 *
 * @param listen address to serve NBD on (loopback by default: NBD itself has no authentication)
 * @param defaultExport namespace served to clients that ask for the empty export name, or null
 * @param ioThreads Netty event loop threads (0: one per core)
 */
public record GatewayConfig(HostPort listen, String defaultExport, int ioThreads) {
  public static final int DEFAULT_PORT = 10809;

  public static GatewayConfig of(HostPort listen) {
    return new GatewayConfig(listen, null, 0);
  }
}
