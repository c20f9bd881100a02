package io.vmd.meta;

import io.vmd.common.HostPort;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;

/**
 * Loopback ports free right now. A voter is named by its address, so it needs its port before it
 * starts (port 0 cannot name it); in-JVM clusters and tests take theirs from here.
 */
public final class FreePorts {
  private FreePorts() {}

  public static List<HostPort> loopback(int n) {
    List<ServerSocket> held = new ArrayList<>();
    List<HostPort> out = new ArrayList<>();
    try {
      for (int i = 0; i < n; i++) {
        ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        held.add(s);
        out.add(new HostPort("127.0.0.1", s.getLocalPort()));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("no free loopback port: " + e.getMessage(), e);
    } finally {
      for (ServerSocket s : held) {
        try {
          s.close();
        } catch (IOException e) {
          // released either way
        }
      }
    }
    return out;
  }
}
