package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.client.ClientConfig;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.meta.FreePorts;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaServer;
import io.vmd.nbd.GatewayFixture;
import io.vmd.nbd.NbdGateway;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Servers on other "hosts": three Linux network namespaces joined to this one by veth pairs, each
 * running a {@code vmd server} process. Cutting a link ({@code ip link set ... down}) drops packets
 * silently, as a failed switch port does: no reset, no error, just silence. Nothing may hang past the
 * request timeout and nothing may be lost. Needs root (network namespaces), as CI runs. Plaintext
 * (--insecure): this test is about silence on the wire, not about who may speak.
 */
class LinkCutIT {
  private static final int SERVERS = 3;
  private static final String PREFIX = "vmdlc" + (ProcessHandle.current().pid() % 10000) + "n";
  private static final List<Process> servers = new ArrayList<>();
  private static MetaServer meta;
  private static HostPort metaAt;
  @TempDir static Path tmp;

  private static void sh(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out
          + " (network namespaces need root)");
    }
  }

  private static String ip() {
    return Files.isExecutable(Path.of("/usr/sbin/ip")) ? "/usr/sbin/ip" : "/sbin/ip";
  }

  private static String hostSide(int i) {
    return PREFIX + i + "h";
  }

  @BeforeAll
  static void hosts() throws Exception {
    // The control plane runs here, on the host side of link 1 (never cut): every namespace reaches it
    // through its own link, by a default route to this host.
    metaAt = new HostPort("10.231.101.1", FreePorts.loopback(1).get(0).port());
    for (int i = 0; i < SERVERS; i++) {
      String ns = PREFIX + i;
      sh(ip(), "netns", "add", ns);
      sh(ip(), "link", "add", hostSide(i), "type", "veth", "peer", "name", ns + "p");
      sh(ip(), "link", "set", ns + "p", "netns", ns);
      sh(ip(), "addr", "add", "10.231." + (100 + i) + ".1/24", "dev", hostSide(i));
      sh(ip(), "link", "set", hostSide(i), "up");
      sh(ip(), "netns", "exec", ns, ip(), "addr", "add", "10.231." + (100 + i) + ".2/24", "dev", ns + "p");
      sh(ip(), "netns", "exec", ns, ip(), "link", "set", ns + "p", "up");
      sh(ip(), "netns", "exec", ns, ip(), "link", "set", "lo", "up");
      sh(ip(), "netns", "exec", ns, ip(), "route", "add", "default", "via", "10.231." + (100 + i) + ".1");
    }
    meta = MetaServer.start(MetaConfig.single(metaAt, tmp.resolve("meta"), "vmd"));
    for (int i = 0; i < SERVERS; i++) {
      String ns = PREFIX + i;
      Path log = tmp.resolve("server" + i + ".log");
      ProcessBuilder pb = new ProcessBuilder(ip(), "netns", "exec", ns, System.getProperty("vmd.launcher"), "server",
          "--insecure", "--meta", metaAt.toString(), "--listen", "10.231." + (100 + i) + ".2:7400", "--memory", "64M", "--availability-interval", "500ms");
      pb.environment().put("VMD_JAR", System.getProperty("vmd.jar"));
      pb.environment().put("VMD_WARM_UP", "0");
      Process p = pb.redirectError(log.toFile()).start();
      servers.add(p);
      String line = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
      assertThat(line).as("server %d: %s", i, Files.readString(log)).contains("listening on");
    }
  }

  @AfterAll
  static void teardown() throws Exception {
    for (Process p : servers) {
      p.destroy();
      if (!p.waitFor(10, TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    }
    if (meta != null) {
      meta.close();
    }
    for (int i = 0; i < SERVERS; i++) {
      new ProcessBuilder(ip(), "netns", "del", PREFIX + i).start().waitFor();
    }
  }

  private static byte[] content(long seed, int pages) {
    byte[] b = new byte[pages * 4096];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void aCutLinkHangsNothingPastTheTimeoutLosesNothingAndTheServerRejoinsWhenItIsBack() throws Exception {
    Duration timeout = Duration.ofSeconds(5);
    try (VmdClient client = VmdClient.connect(ClientConfig.of(List.of(metaAt)).withRequestTimeout(timeout));
        NbdGateway gw = GatewayFixture.loopbackGateway(client)) {
      // Every page of the device is written: with a server cut off, a page no live server holds could
      // be on it, and is an error rather than a hole (never a silent zero).
      client.namespaces().create("cut", 8L << 20, 2);
      Namespace ns = client.attach("cut", true);
      byte[] data = content(1, 2048);
      ns.writeSync(0, data);

      sh(ip(), "link", "set", hostSide(0), "down");
      long start = System.nanoTime();
      assertThat(ns.readSync(0, 2048)).as("every page from a live replica").isEqualTo(data);
      long readMillis = (System.nanoTime() - start) / 1_000_000;
      byte[] more = content(2, 512);
      ns.writeSync(0, more);
      System.arraycopy(more, 0, data, 0, more.length);
      long allMillis = (System.nanoTime() - start) / 1_000_000;
      System.out.println("link cut: read of 2048 pages after " + readMillis + " ms, rewrite done after " + allMillis
          + " ms");
      assertThat(readMillis).as("no request waits past the timeout").isLessThan(timeout.toMillis() + 1000);
      assertThat(client.cluster().servers().get(0).up()).as("the silent server is taken as down").isFalse();

      // An NBD client reading through a gateway on this host sees the whole device, no error.
      Path back = tmp.resolve("back.img");
      Process copy = new ProcessBuilder("nbdcopy", "nbd://" + gw.address() + "/cut", back.toString())
          .redirectErrorStream(true).start();
      assertThat(copy.waitFor(60, TimeUnit.SECONDS)).isTrue();
      assertThat(copy.exitValue()).as(new String(copy.getInputStream().readAllBytes())).isZero();
      assertThat(Arrays.copyOf(Files.readAllBytes(back), data.length)).isEqualTo(data);

      sh(ip(), "link", "set", hostSide(0), "up");
      Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> client.cluster().servers().get(0).up());
      assertThat(ns.readSync(0, 2048)).isEqualTo(data);
    }
  }
}
