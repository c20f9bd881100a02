package io.vmd.common;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Where an NBD gateway is reached: a TCP address, or a Unix socket on this host. Written and parsed as
 * {@code HOST:PORT} or {@code unix:PATH}.
 *
 * @param tcp the TCP address, or null
 * @param unix the socket's path, or null; exactly one of the two is set
 */
public record NbdEndpoint(HostPort tcp, Path unix) {
  private static final String UNIX = "unix:";

  public NbdEndpoint {
    if ((tcp == null) == (unix == null)) {
      throw new IllegalArgumentException("an NBD endpoint is a TCP address or a Unix socket, not both or neither");
    }
  }

  public static NbdEndpoint tcp(HostPort at) {
    return new NbdEndpoint(Objects.requireNonNull(at), null);
  }

  public static NbdEndpoint unix(Path socket) {
    return new NbdEndpoint(null, socket.toAbsolutePath());
  }

  /** {@code unix:PATH} or {@code HOST:PORT}. */
  public static NbdEndpoint parse(String s) {
    if (s.startsWith(UNIX)) {
      String path = s.substring(UNIX.length());
      if (path.isEmpty()) {
        throw new IllegalArgumentException("'" + s + "': give the socket's path after unix:");
      }
      return unix(Path.of(path));
    }
    return tcp(HostPort.parse(s));
  }

  /** The NBD URI of {@code export} here, as libnbd and QEMU take it. */
  public String uri(String export) {
    return tcp != null ? "nbd://" + tcp + "/" + export : "nbd+unix:///" + export + "?socket=" + unix;
  }

  @Override
  public String toString() {
    return tcp != null ? tcp.toString() : UNIX + unix;
  }
}
