package io.vmd.bench.chaos;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.load.NbdHandshake;
import io.vmd.client.ClientConfig;
import io.vmd.client.ServerInfo;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.meta.FreePorts;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaServer;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * {@code vmd bench chaos}: a control plane of three voters, three server processes, two replicas, and
 * an NBD writer streaming checksummed pages through a gateway while one server is SIGKILLed (a third of
 * the way), the control plane's leader is killed (half way) and another server restarted empty (two
 * thirds of the way); then every page is read back and checked. Then the gateway is replaced while a
 * server is frozen (SIGSTOP): the new gateway must read every page or fail it, never read zeros where
 * data was written, and read everything once the server resumes. Prints pages written, verified and
 * lost, zero pages, NBD errors, and the longest stall the writer saw.
 */
public final class ChaosBench {
  private static final int PAGE = 4096;
  private static final int CHUNK_PAGES = 16; // 64 KiB per NBD request

  /** What the run counted. */
  public record Outcome(long pagesWritten, long pagesVerified, long pagesLost, long nbdErrors, double longestStallMillis,
      double seconds, long zeroPages, long verifiedAfterRestart, long failedWhileFrozen) {}

  private final long bytes;
  private final long seed;
  private final PrintStream out;
  private final PrintStream progress;
  private final List<Process> servers = new ArrayList<>();
  private final List<HostPort> addresses = new ArrayList<>();
  private final List<MetaServer> voters = new ArrayList<>();
  private List<HostPort> meta;

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
        ServerProcess.class.getName(), at.toString(), Long.toString(memory),
        String.join(",", meta.stream().map(HostPort::toString).toList()))
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
    Path metaDir = Files.createTempDirectory("vmd-chaos-meta");
    meta = FreePorts.loopback(3);
    for (HostPort v : meta) {
      voters.add(MetaServer.start(voterConfig(v, metaDir)));
    }
    try {
      for (int i = 0; i < 3; i++) {
        HostPort at = new HostPort("127.0.0.1", freePort());
        servers.add(startServer(at, memory));
        addresses.add(at);
      }
      progress.printf(Locale.ROOT, "[chaos] control plane of 3 voters on %s; 3 server processes of %d MiB on %s%n",
          meta, memory >> 20, addresses);
      long start = System.nanoTime();
      Outcome o;
      try (VmdClient client = VmdClient.connect(ClientConfig.of(meta).withRequestTimeout(Duration.ofSeconds(10)),
          "gateway"); NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
              .withRereplication(Duration.ofSeconds(1), 16_384), client, new SimpleMeterRegistry())) {
        client.namespaces().create("chaos", pages * PAGE, 2);
        o = stream(gw, client, pages, memory, metaDir);
      }
      long[] restart = replaceGatewayWhileAServerIsFrozen(pages);
      return new Outcome(o.pagesWritten(), o.pagesVerified(), o.pagesLost(), o.nbdErrors(),
          o.longestStallMillis(), (System.nanoTime() - start) / 1e9, o.zeroPages() + restart[0], restart[1],
          restart[2]);
    } finally {
      for (Process p : servers) {
        resume(p);
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
      for (MetaServer v : voters) {
        if (v != null) {
          v.close();
        }
      }
      try (Stream<Path> walk = Files.walk(metaDir)) {
        walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }

  private MetaConfig voterConfig(HostPort v, Path dir) {
    return new MetaConfig(v, meta, dir.resolve("voter-" + v.port()), "vmd", 1000);
  }

  private static void signal(Process p, String sig) throws IOException, InterruptedException {
    new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).start().waitFor();
  }

  private static void resume(Process p) {
    try {
      signal(p, "CONT");
    } catch (IOException | InterruptedException e) {
      // ending anyway
    }
  }

  /**
   * The gateway stops (as for an upgrade) and a new one, on a new client, takes the export while server
   * 0 is frozen (SIGSTOP): every page must read back or fail, never read as zeros; once the server
   * resumes, every page reads back. Returns {zero pages, pages verified after the restart, pages that
   * failed while the server was frozen}.
   */
  private long[] replaceGatewayWhileAServerIsFrozen(long pages) throws Exception {
    progress.printf("[chaos] gateway stopped; SIGSTOP server 0 (%s); a new gateway takes the export%n", addresses.get(0));
    signal(servers.get(0), "STOP");
    long zero = 0;
    long failed = 0;
    long verified = 0;
    try (VmdClient client = VmdClient.connect(ClientConfig.of(meta).withRequestTimeout(Duration.ofSeconds(5))
            .withConnectTimeout(Duration.ofSeconds(1)).withAttachWait(Duration.ofSeconds(2)), "gateway");
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), client,
            new SimpleMeterRegistry())) {
      long[] frozen = readAll(gw, pages);
      zero += frozen[2];
      failed = frozen[3];
      progress.printf("[chaos] with server 0 frozen: %d pages verified, %d failed (never zeros: %d zero pages)%n",
          frozen[0], frozen[3], frozen[2]);
      signal(servers.get(0), "CONT");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      long[] after;
      do {
        Thread.sleep(500);
        after = readAll(gw, pages);
      } while (after[0] < pages && System.nanoTime() < deadline);
      zero += after[2];
      verified = after[0];
      progress.printf("[chaos] server 0 resumed: %d pages verified%n", after[0]);
    }
    return new long[] {zero, verified, failed};
  }

  /** Reads every page through a new NBD connection: {verified, wrong, zero where data was written, failed}. */
  private long[] readAll(NbdGateway gw, long pages) throws IOException {
    byte[] chunk = new byte[CHUNK_PAGES * PAGE];
    byte[] page = new byte[PAGE];
    byte[] zeros = new byte[PAGE];
    long[] out = new long[4];
    try (Socket s = new Socket(gw.address().host(), gw.address().port())) {
      s.setTcpNoDelay(true);
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
      DataOutputStream o = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 17));
      NbdHandshake.go(in, o, "chaos", "gateway");
      for (long p = 0; p < pages; p += CHUNK_PAGES) {
        int n = (int) Math.min(CHUNK_PAGES, pages - p);
        if (request(in, o, 0, p, n, chunk) != 0) {
          out[3] += n;
          continue;
        }
        for (int i = 0; i < n; i++) {
          fill(page, seed, p + i);
          if (Arrays.equals(chunk, i * PAGE, (i + 1) * PAGE, page, 0, PAGE)) {
            out[0]++;
          } else if (Arrays.equals(chunk, i * PAGE, (i + 1) * PAGE, zeros, 0, PAGE)) {
            out[2]++;
          } else {
            out[1]++;
          }
        }
      }
    }
    return out;
  }

  /** The current member at {@code address} (a restarted in-memory server is a new member there), or null. */
  private static ServerInfo at(VmdClient client, HostPort address) {
    for (ServerInfo s : client.cluster().servers()) {
      if (s.address().equals(address)) {
        return s;
      }
    }
    return null;
  }

  private Outcome stream(NbdGateway gw, VmdClient client, long pages, long memory, Path metaDir)
      throws Exception {
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
      int leaderKilled = -1;
      for (long p = 0; p < pages; p += CHUNK_PAGES) {
        if (leaderKilled < 0 && p >= pages / 2) {
          for (int v = 0; v < voters.size(); v++) {
            if (voters.get(v).isLeader()) {
              leaderKilled = v;
            }
          }
          if (leaderKilled >= 0) {
            progress.printf("[chaos] killing the control plane's leader (%s) after %d pages%n", meta.get(leaderKilled), p);
            voters.get(leaderKilled).close();
            voters.set(leaderKilled, null);
          }
        }
        if (!killed && p >= pages / 3) {
          progress.printf("[chaos] SIGKILL server 1 (%s) after %d pages%n", addresses.get(1), p);
          servers.get(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
          killed = true;
        }
        if (!restarted && p >= 2 * pages / 3) {
          // Two replicas survive one loss at a time: the second waits until the first is repaired.
          long t = System.nanoTime();
          while (gw.metrics("chaos").underReplicated() > 0 || at(client, addresses.get(1)).downForNanos() < 1_500_000_000L) {
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
      if (leaderKilled >= 0) {
        progress.printf("[chaos] the killed voter restarts from its log and snapshot%n");
        voters.set(leaderKilled, MetaServer.start(voterConfig(meta.get(leaderKilled), metaDir)));
      }
      progress.printf("[chaos] %d pages written; waiting for the replicas to be whole again%n", written);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (System.nanoTime() < deadline
          && (gw.metrics("chaos") == null || gw.metrics("chaos").underReplicated() > 0 || at(client, addresses.get(2)) == null
              || !at(client, addresses.get(2)).up())) {
        Thread.sleep(200);
      }
      long[] read = readAll(gw, pages);
      errors += read[3] > 0 ? 1 : 0;
      return new Outcome(written, read[0], pages - read[0], errors, stall, 0, read[2], 0, 0);
    }
  }

  /** One NBD request (0 read, 1 write) of n pages at page p; returns the reply's error (0: ok). */
  private static int request(DataInputStream in, DataOutputStream out, int type, long p, int n, byte[] data)
      throws IOException {
    NbdHandshake.request(out, type, p, p * PAGE, n * PAGE);
    if (type == 1) {
      out.write(data, 0, n * PAGE);
    }
    out.flush();
    int error = NbdHandshake.simpleReply(in, null, "gateway");
    if (type == 0 && error == 0) {
      in.readFully(data, 0, n * PAGE);
    }
    return error;
  }

  public void print(Outcome o) {
    out.printf(Locale.ROOT, "%nvmd bench chaos: %d MiB through NBD, 3 voters, 3 servers, 2 replicas; server 1 SIGKILLed at"
        + " 1/3, the control plane's leader killed at 1/2, server 2 restarted empty at 2/3; then a new gateway"
        + " while server 0 is frozen%n", bytes >> 20);
    out.printf(Locale.ROOT, "  pages written    %d%n  pages verified   %d%n  pages lost       %d%n  zero pages       %d%n"
        + "  NBD errors       %d%n  longest stall    %.0f ms%n  after restart    %d verified (%d failed, none zero,"
        + " while server 0 was frozen)%n  run time         %.1f s%n", o.pagesWritten(), o.pagesVerified(),
        o.pagesLost(), o.zeroPages(), o.nbdErrors(), o.longestStallMillis(), o.verifiedAfterRestart(),
        o.failedWhileFrozen(), o.seconds());
    out.flush();
  }
}
