package io.vmd.load;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.tls.Role;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.LocalCluster;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.security.SecureRandom;
import java.time.Duration;

/**
 * Runs VMD's data path inside this JVM for a moment before a gateway or server takes traffic, so the
 * JIT compiler has compiled it by the time a swapping VM arrives. Measured as deployed, fresh processes
 * served the first seconds of 4 KiB QD32 load at about a third of their warm speed, their compiler
 * threads taking half of a 2-core host; the JDK's own remedies (class-data sharing, JDK 25's AOT cache,
 * C1 only) did not change that, because what is missing is compiled code, not loaded classes.
 *
 * <p>Nothing outside this JVM is touched: a private control plane, two in-memory servers and (for a
 * gateway) a private NBD gateway on ephemeral loopback ports, torn down afterwards. The load is the
 * benchmark's: 4 KiB random 70/30 at depth 32, 1 MiB sequential writes and reads, 4 KiB at depth 1.
 * A role that runs secure warms up secure (TLS with a CA made for the warm-up, sealed pages), so the
 * code its traffic takes is the code compiled.
 */
public final class SelfWarmUp {
  private static final long STORE = 96L << 20;
  private static final long REGION = 32L << 20;
  private static final String SINGLE = "warm-up-r1";
  private static final String DOUBLE = "warm-up-r2";
  private static final Workload[] ROUND = {Workload.ALL[2], Workload.ALL[3], Workload.ALL[4], Workload.ALL[0],
    Workload.ALL[1]};
  private static final long[] ROUND_NANOS = {200_000_000, 40_000_000, 40_000_000, 40_000_000, 40_000_000};
  private static final int MIN_ROUNDS = 2;

  /** What a warm-up did: requests completed and the time it took (including its start and stop). */
  public record Summary(long requests, Duration took) {}

  private SelfWarmUp() {}

  /**
   * Warms the gateway's path: NBD in, VmdClient out, through a private gateway.
   *
   * @param load the most time spent driving load (start-up and tear-down of the private cluster come on top)
   */
  public static Summary gateway(Duration load, int ioThreads, boolean secure) throws Exception {
    return run(load, ioThreads, true, secure);
  }

  /** Warms a server's path: page frames in, the page store, replies out (with the client's path beside). */
  public static Summary server(Duration load, int ioThreads, boolean secure) throws Exception {
    return run(load, ioThreads, false, secure);
  }

  private static Summary run(Duration load, int ioThreads, boolean viaNbd, boolean secure) throws Exception {
    long start = System.nanoTime();
    long requests = 0;
    // Two servers and both replication factors: with one server or one copy, branches of placement and
    // fan-out never run, and the real traffic's first page would throw the compiled code away again.
    LocalCluster.Builder<LocalCluster> builder = LocalCluster.builder().servers(2, STORE);
    try (LocalCluster cluster = (secure ? builder.privateCa() : builder.insecure()).start();
        VmdClient client = VmdClient.connect(clientConfig(cluster, ioThreads))) {
      client.namespaces().create(SINGLE, REGION, 1);
      client.namespaces().create(DOUBLE, REGION, 2);
      NbdGateway gateway = viaNbd
          ? NbdGateway.start(new GatewayConfig(new HostPort("127.0.0.1", 0), SINGLE), client,
              new PrometheusMeterRegistry(PrometheusConfig.DEFAULT))
          : null;
      Driver[] drivers = new Driver[2];
      try {
        // Through the gateway, one connection with structured replies (QEMU, libnbd) and one with
        // simple ones (the kernel): warmed with simple replies alone, the gateway compiled its
        // structured-reply path, and threw away code that had never seen it, under its first QEMU.
        String[] names = {SINGLE, DOUBLE};
        for (int i = 0; i < 2; i++) {
          drivers[i] = viaNbd
              ? new NbdLoadClient("127.0.0.1", gateway.address().port(), names[i], i == 0)
              : new DirectDriver(client.attach(names[i], true));
          drivers[i].fill(REGION);
          requests += REGION >> 20;
        }
        // Rounds of every workload on both, most of the time on the 4 KiB path, until the compiler has
        // little left to do (under a tenth of a round's time compiling) or the time is up. How long
        // that takes depends on the cores the JVM gets: a fixed time would be too long alone or too
        // short beside other starting processes.
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        long deadline = System.nanoTime() + load.toNanos();
        long compiledBefore = timed ? jit.getTotalCompilationTime() : 0;
        int rounds = 0;
        while (System.nanoTime() < deadline) {
          long roundStart = System.nanoTime();
          for (Driver d : drivers) {
            for (int i = 0; i < ROUND.length; i++) {
              requests += d.run(ROUND[i], REGION, ROUND_NANOS[i]).operations;
            }
          }
          rounds++;
          if (timed) {
            long compiled = jit.getTotalCompilationTime();
            long roundMillis = (System.nanoTime() - roundStart) / 1_000_000;
            if (rounds >= MIN_ROUNDS && (compiled - compiledBefore) * 10 < roundMillis) {
              break;
            }
            compiledBefore = compiled;
          }
        }
      } finally {
        for (Driver d : drivers) {
          if (d != null) {
            d.close();
          }
        }
        if (gateway != null) {
          gateway.close();
        }
      }
    }
    return new Summary(requests, Duration.ofNanos(System.nanoTime() - start));
  }

  private static ClientConfig clientConfig(LocalCluster cluster, int ioThreads) {
    ClientConfig config = ClientConfig.of(cluster.metaAddresses()).withIoThreads(ioThreads);
    if (cluster.tls() == null) {
      return config;
    }
    byte[] sealKey = new byte[32];
    new SecureRandom().nextBytes(sealKey);
    return config.withTls(cluster.clientTls("warm-up", Role.ADMIN)).withSealKey(sealKey);
  }
}
