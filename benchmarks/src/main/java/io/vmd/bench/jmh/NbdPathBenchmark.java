package io.vmd.bench.jmh;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.load.NbdHandshake;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.server.LocalCluster;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One 4 KiB NBD request at a time through the whole data path, all in this JVM: a blocking NBD client
 * on loopback, the gateway, the VMD client and two servers. With {@code -prof gc}, B/op is everything
 * the JVM allocated to serve one page-in or page-out: the data path's garbage per request.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
// As bin/vmd runs it: leak detection off (its sampled stack traces would be most of the garbage).
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g", "-XX:+UseZGC", "-Dio.netty.leakDetection.level=disabled"})
@State(Scope.Benchmark)
public class NbdPathBenchmark {
  static final int PAGES = 16_384;

  private LocalCluster cluster;
  private VmdClient client;
  private NbdGateway gateway;
  private Socket socket;
  private DataInputStream in;
  private DataOutputStream out;
  private final byte[] page = new byte[4096];
  private final SplittableRandom random = new SplittableRandom(7);

  @Setup(Level.Trial)
  public void start() throws Exception {
    cluster = LocalCluster.builder().servers(2, 256L << 20).insecure().start();
    client = VmdClient.connect(ClientConfig.of(cluster.metaAddresses()).withIoThreads(2));
    client.namespaces().create("bench", (long) PAGES * 4096, 1);
    gateway = NbdGateway.start(new GatewayConfig(new HostPort("127.0.0.1", 0), "bench"), client, new SimpleMeterRegistry());
    socket = new Socket("127.0.0.1", gateway.address().port());
    socket.setTcpNoDelay(true);
    in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 65536));
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 65536));
    NbdHandshake.go(in, out, "bench", "gateway");
    for (int p = 0; p < PAGES; p++) {
      request(1, p);
    }
  }

  private void request(int type, long pageIndex) throws IOException {
    NbdHandshake.request(out, type, pageIndex, pageIndex * 4096, 4096);
    if (type == 1) {
      out.write(page);
    }
    out.flush();
    if (NbdHandshake.simpleReply(in, null, "gateway") != 0) {
      throw new IOException("request failed");
    }
    if (type == 0) {
      in.readFully(page);
    }
  }

  @Benchmark
  public byte pageIn() throws IOException {
    request(0, random.nextInt(PAGES));
    return page[0];
  }

  @Benchmark
  public byte pageOut() throws IOException {
    request(1, random.nextInt(PAGES));
    return page[0];
  }

  @TearDown(Level.Trial)
  public void stop() throws IOException {
    socket.close();
    gateway.close();
    client.close();
    cluster.close();
  }
}
