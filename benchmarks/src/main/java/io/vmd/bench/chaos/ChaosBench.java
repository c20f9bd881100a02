package io.vmd.bench.chaos;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.bench.fault.NbdHandshake;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * {@code vmd bench chaos}: three server processes, two replicas, and an NBD writer streaming
 * checksummed pages through a gateway while one server is SIGKILLed (a third of the way) and another
 * restarted empty (two thirds of the way); then every page is read back and checked. Prints pages
 * written, verified and lost, NBD errors, and the longest stall the writer saw.
 */
public final class ChaosBench {
  private static final int PAGE = 4096;
  private static final int CHUNK_PAGES = 16; // 64 KiB per NBD request

  /** What the run counted. */
  public record Outcome(long pagesWritten, long pagesVerified, long pagesLost, long nbdErrors, double longestStallMillis,
      double seconds) {}

  private final long bytes;
  private final long seed;
  private final PrintStream out;
  private final PrintStream progress;
  private final List<Process> servers = new ArrayList<>();
  private final List<HostPort> addresses = new ArrayList<>();

  public ChaosBench(long bytes, long seed, PrintStream out, PrintStream progress) {
    this.bytes = bytes;
    this.seed = seed;
    this.out = out;
    this.progress = progress;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private Process startServer(HostPort at, long memory) throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    Process p = new ProcessBuilder(java, "-Xmx256m", "-XX:MaxDirectMemorySize=" + (memory + (256L << 20)),
        "-Dio.netty.leakDetection.level=disabled", "-cp", System.getProperty("java.class.path"),
        ServerProcess.class.getName(), at.toString(), Long.toString(memory))
        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String line = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
    if (line == null || !line.startsWith("listening on")) {
      p.destroyForcibly();
      throw new IOException("server process on " + at + " did not start");
    }
    return p;
  }

  static void fill(byte[] page, long seed, long index) {
    ByteBuffer b = ByteBuffer.wrap(page);
    long x = seed * 0x9E3779B97F4A7C15L + index;
    for (int i = 0; i < PAGE / 8; i++) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      b.putLong(x + index);
    }
  }

  public Outcome run() throws Exception {
    long pages = bytes / PAGE;
    // Two replicas of every page over three servers, and room for one server's share to move.
    long memory = Math.max(64L << 20, bytes * 2 / 3 + bytes / 2);
    try {
      for (int i = 0; i < 3; i++) {
        HostPort at = new HostPort("127.0.0.1", freePort());
        servers.add(startServer(at, memory));
        addresses.add(at);
      }
      progress.printf(Locale.ROOT, "[chaos] 3 server processes of %d MiB on %s%n", memory >> 20, addresses);
      try (VmdClient client = VmdClient.connect(ClientConfig.of(addresses).withRequestTimeout(Duration.ofSeconds(10)));
          NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
              .withRereplication(Duration.ofSeconds(1), 16_384), client, new SimpleMeterRegistry())) {
        client.createNamespace("chaos", pages * PAGE, 2);
        long start = System.nanoTime();
        Outcome o = stream(gw, client, pages, memory);
        return new Outcome(o.pagesWritten(), o.pagesVerified(), o.pagesLost(), o.nbdErrors(),
            o.longestStallMillis(), (System.nanoTime() - start) / 1e9);
      }
    } finally {
      for (Process p : servers) {
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  private Outcome stream(NbdGateway gw, VmdClient client, long pages, long memory) throws Exception {
    long written = 0;
    long errors = 0;
    double stall = 0;
    double repairMillis = 0;
    byte[] chunk = new byte[CHUNK_PAGES * PAGE];
    byte[] page = new byte[PAGE];
    try (Socket s = new Socket(gw.address().host(), gw.address().port())) {
      s.setTcpNoDelay(true);
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
      DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 17));
      NbdHandshake.go(in, out, "chaos", "gateway");
      boolean killed = false;
      boolean restarted = false;
      for (long p = 0; p < pages; p += CHUNK_PAGES) {
        if (!killed && p >= pages / 3) {
          progress.printf("[chaos] SIGKILL server 1 (%s) after %d pages%n", addresses.get(1), p);
          servers.get(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
          killed = true;
        }
        if (!restarted && p >= 2 * pages / 3) {
          // Two replicas survive one loss at a time: the second waits until the first is repaired.
          long t = System.nanoTime();
          while (gw.metrics("chaos").underReplicated() > 0 || client.servers()[1].downForNanos() < 1_500_000_000L) {
            Thread.sleep(50);
          }
          repairMillis = (System.nanoTime() - t) / 1e6 + 1500;
          progress.printf(Locale.ROOT, "[chaos] every page has two live copies again (%.0f ms after the kill at most)%n",
              repairMillis);
          progress.printf("[chaos] restarting server 2 (%s) empty after %d pages%n", addresses.get(2), p);
          servers.get(2).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
          servers.set(2, startServer(addresses.get(2), memory));
          restarted = true;
        }
        int n = (int) Math.min(CHUNK_PAGES, pages - p);
        for (int i = 0; i < n; i++) {
          fill(page, seed, p + i);
          System.arraycopy(page, 0, chunk, i * PAGE, PAGE);
        }
        long t0 = System.nanoTime();
        if (request(in, out, 1, p, n, chunk) != 0) {
          errors++;
        } else {
          written += n;
        }
        stall = Math.max(stall, (System.nanoTime() - t0) / 1e6);
      }
      progress.printf("[chaos] %d pages written; waiting for the replicas to be whole again%n", written);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (System.nanoTime() < deadline
          && (gw.metrics("chaos") == null || gw.metrics("chaos").underReplicated() > 0 || !client.servers()[2].up())) {
        Thread.sleep(200);
      }
      long verified = 0;
      long lost = 0;
      for (long p = 0; p < pages; p += CHUNK_PAGES) {
        int n = (int) Math.min(CHUNK_PAGES, pages - p);
        if (request(in, out, 0, p, n, chunk) != 0) {
          errors++;
          lost += n;
          continue;
        }
        for (int i = 0; i < n; i++) {
          fill(page, seed, p + i);
          if (java.util.Arrays.equals(chunk, i * PAGE, (i + 1) * PAGE, page, 0, PAGE)) {
            verified++;
          } else {
            lost++;
          }
        }
      }
      return new Outcome(written, verified, lost, errors, stall, 0);
    }
  }

  /** One NBD request (0 read, 1 write) of n pages at page p; returns the reply's error (0: ok). */
  private static int request(DataInputStream in, DataOutputStream out, int type, long p, int n, byte[] data)
      throws IOException {
    out.writeInt(0x25609513);
    out.writeShort(0);
    out.writeShort(type);
    out.writeLong(p);
    out.writeLong(p * PAGE);
    out.writeInt(n * PAGE);
    if (type == 1) {
      out.write(data, 0, n * PAGE);
    }
    out.flush();
    if (in.readInt() != 0x67446698) {
      throw new IOException("bad NBD reply magic");
    }
    int error = in.readInt();
    in.readLong();
    if (type == 0 && error == 0) {
      in.readFully(data, 0, n * PAGE);
    }
    return error;
  }

  public void print(Outcome o) {
    out.printf(Locale.ROOT, "%nvmd bench chaos: %d MiB through NBD, 3 servers, 2 replicas; server 1 SIGKILLed at 1/3,"
        + " server 2 restarted empty at 2/3%n", bytes >> 20);
    out.printf(Locale.ROOT, "  pages written    %d%n  pages verified   %d%n  pages lost       %d%n  NBD errors       %d%n"
        + "  longest stall    %.0f ms%n  run time         %.1f s%n", o.pagesWritten(), o.pagesVerified(),
        o.pagesLost(), o.nbdErrors(), o.longestStallMillis(), o.seconds());
    out.flush();
  }
}
