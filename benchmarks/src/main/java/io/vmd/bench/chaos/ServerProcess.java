package io.vmd.bench.chaos;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.server.ServerConfig;
import io.vmd.server.VmdServer;
import java.time.Duration;

/**
 * A vmd server in a process of its own, for the chaos run to SIGKILL: {@code HOST:PORT MEMORY_BYTES META}.
 * Prints "listening on HOST:PORT" once it serves, then runs until killed.
 */
public final class ServerProcess {
  private ServerProcess() {}

  public static void main(String[] args) throws Exception {
    HostPort at = HostPort.parse(args[0]);
    VmdServer s = VmdServer.start(ServerConfig.inMemory(at, Long.parseLong(args[1]))
        .withAvailabilityInterval(Duration.ofMillis(500)).withMeta(HostPort.parseList(args[2])),
        new SimpleMeterRegistry());
    System.out.println("listening on " + s.address());
    System.out.flush();
    Thread.currentThread().join();
  }
}
