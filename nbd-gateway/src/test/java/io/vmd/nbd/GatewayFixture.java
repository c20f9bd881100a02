package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.server.MiniVmdCluster;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * Test kit: a {@link MiniVmdCluster} with a {@link VmdClient} and an NBD gateway in front of it, and a
 * way to run real NBD tools. Published in nbd-gateway's test-jar for every module's tests.
 */
public final class GatewayFixture implements AutoCloseable {
  public final MiniVmdCluster cluster;
  public final VmdClient client;
  public final NbdGateway gateway;
  public final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

  public GatewayFixture(int servers, long serverMemory) throws Exception {
    this(MiniVmdCluster.builder().servers(servers, serverMemory).start());
  }

  public GatewayFixture(MiniVmdCluster cluster) throws Exception {
    this(cluster, c -> c);
  }

  public GatewayFixture(MiniVmdCluster cluster, UnaryOperator<GatewayConfig> config) throws Exception {
    this.cluster = cluster;
    client = VmdClient.connect(KitClients.config(cluster));
    gateway = NbdGateway.start(config.apply(GatewayConfig.of(new HostPort("127.0.0.1", 0))), client, registry);
  }

  /** An NBD gateway on a free loopback port for {@code client}, as a host runs one. */
  public static NbdGateway loopbackGateway(VmdClient client) throws InterruptedException {
    return NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)), client, new SimpleMeterRegistry());
  }

  public String uri(String namespace) {
    return "nbd://" + gateway.address() + "/" + namespace;
  }

  public long storedPages(int namespaceId) {
    long n = 0;
    for (int i = 0; i < cluster.size(); i++) {
      n += cluster.server(i).store().pageCount(namespaceId);
    }
    return n;
  }

  public record Result(int exit, String out, String err) {}

  /** Runs a command to completion; a tool that is not installed fails the test (test.sh installs them). */
  public static Result run(Path dir, String... command) throws Exception {
    String tool = command[0];
    boolean found = tool.startsWith("/");
    for (String p : System.getenv("PATH").split(File.pathSeparator)) {
      found |= Files.isExecutable(Path.of(p, tool));
    }
    if (!found) {
      fail(tool + " is not installed: run ./test.sh as root (it installs qemu-utils, libnbd-bin, fio, nbdkit)");
    }
    Path out = Files.createTempFile(dir, "out", ".txt");
    Path err = Files.createTempFile(dir, "err", ".txt");
    Process p = new ProcessBuilder(command).directory(dir.toFile())
        .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    if (!p.waitFor(600, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      fail(String.join(" ", command) + " did not finish in 600 s");
    }
    return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }

  /** A file of {@code bytes} random bytes (from {@code seed}) in {@code dir}. */
  public static Path randomFile(Path dir, String name, long seed, int bytes) throws Exception {
    byte[] b = new byte[bytes];
    new Random(seed).nextBytes(b);
    return Files.write(dir.resolve(name), b);
  }

  /** The whole export, read with nbdcopy into {@code dir/name}. */
  public static byte[] readBack(Path dir, String uri, String name) throws Exception {
    Path back = dir.resolve(name);
    ok(dir, "nbdcopy", uri, back.toString());
    return Files.readAllBytes(back);
  }

  public static Result ok(Path dir, String... command) throws Exception {
    Result r = run(dir, command);
    assertThat(r.exit()).as("%s\nstdout: %s\nstderr: %s", String.join(" ", command), r.out(), r.err()).isZero();
    return r;
  }

  public static List<String> lines(String s) {
    List<String> out = new ArrayList<>();
    for (String l : s.split("\n")) {
      if (!l.isBlank()) {
        out.add(l.trim().replaceAll("\\s+", " "));
      }
    }
    return out;
  }

  @Override
  public void close() {
    gateway.close();
    client.close();
    cluster.close();
  }
}
