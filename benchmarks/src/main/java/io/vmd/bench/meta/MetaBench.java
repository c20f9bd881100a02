package io.vmd.bench.meta;

import io.vmd.client.ClientConfig;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.server.LocalCluster;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

/**
 * The control plane at scale: a cluster of three real servers plus {@code members - 3} simulated ones
 * (registered members at loopback addresses where nothing listens), and the numbers that grow with
 * membership: registering, a client learning the membership, namespace operations per second, lease
 * renewals per second, and the time to connect and attach a namespace.
 */
public final class MetaBench {
  private final int members;
  private final int voters;
  private final int namespaces;
  private final PrintStream out;
  private final PrintStream progress;

  public MetaBench(int members, int voters, int namespaces, PrintStream out, PrintStream progress) {
    this.members = members;
    this.voters = voters;
    this.namespaces = namespaces;
    this.out = out;
    this.progress = progress;
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  private static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c[c.length / 2];
  }

  /** A loopback address where nothing listens (port 7, echo, is not served here): a simulated server. */
  private static HostPort simulated(int i) {
    return new HostPort("127.66." + (i / 250) + "." + (i % 250 + 1), 7);
  }

  public void run() throws Exception {
    Path dir = Files.createTempDirectory("vmd-bench-meta");
    try (LocalCluster cluster = LocalCluster.builder().servers(3, 64L << 20).metaVoters(voters).metaDir(dir).insecure()
        .start(); MetaClient meta = MetaClient.connect("vmd", cluster.metaAddresses())) {
      progress.printf("[meta] %d voter(s) on %s, 3 servers%n", voters, cluster.metaAddresses());
      int fake = members - 3;
      long t = System.nanoTime();
      for (int i = 0; i < fake; i++) {
        meta.register("simulated-" + i, simulated(i), false);
      }
      double register = seconds(t);
      row("register a server (one at a time)", fake / register, "ops/s", String.format(Locale.ROOT,
          "%d members in %.2f s", members, register));

      double[] views = new double[20];
      int bytes = 0;
      for (int i = 0; i < views.length; i++) {
        long v0 = System.nanoTime();
        MetaView v = meta.view();
        views[i] = (System.nanoTime() - v0) / 1e6;
        bytes = v.servers().size();
      }
      row("learn the membership (linearizable view)", median(views), "ms p50", bytes + " members");

      t = System.nanoTime();
      for (int i = 0; i < namespaces; i++) {
        meta.createNamespace("ns" + i, 1L << 30, 2);
      }
      double create = seconds(t);
      row("create a namespace (one at a time)", namespaces / create, "ops/s", "");

      ExecutorService pool = Executors.newFixedThreadPool(16);
      t = System.nanoTime();
      List<CompletableFuture<Object>> creates = new ArrayList<>();
      for (int i = 0; i < namespaces; i++) {
        int n = i;
        creates.add(CompletableFuture.supplyAsync(() -> {
          try {
            return meta.createNamespace("par" + n, 1L << 30, 2);
          } catch (Exception e) {
            return e;
          }
        }, pool));
      }
      CompletableFuture.allOf(creates.toArray(new CompletableFuture<?>[0])).join();
      double parallel = seconds(t);
      pool.shutdown();
      row("create a namespace (16 callers at once)", namespaces / parallel, "ops/s", "");

      t = System.nanoTime();
      for (int i = 0; i < namespaces; i++) {
        meta.claim("ns" + i, "gateway-bench", Duration.ofSeconds(30), false, -1);
      }
      double claim = seconds(t);
      row("claim ownership (one at a time)", namespaces / claim, "ops/s", "each moves the epoch");

      // Leases are renewed per owner (one command renews all its namespaces): 50 gateways of 10 each.
      int gateways = Math.max(1, namespaces / 10);
      for (int i = 0; i < namespaces; i++) {
        meta.claim("par" + i, "gateway-" + (i % gateways), Duration.ofSeconds(30), false, -1);
      }
      t = System.nanoTime();
      int rounds = 20;
      for (int r = 0; r < rounds; r++) {
        List<CompletableFuture<Map<Integer, Long>>> renewals = new ArrayList<>();
        for (int g = 0; g < gateways; g++) {
          renewals.add(meta.renewAsync("gateway-" + g, Duration.ofSeconds(30)));
        }
        CompletableFuture.allOf(renewals.toArray(new CompletableFuture<?>[0])).join();
      }
      double renew = seconds(t);
      row("renew every lease of an owner (pipelined)", rounds * gateways / renew, "ops/s", String.format(Locale.ROOT,
          "%d namespaces each: %.0f namespace leases/s; %d owners need %.0f/s at a 5 s lease", namespaces / gateways,
          rounds * (double) namespaces / renew, gateways + 1, (gateways + 1) / (5.0 / 3)));

      t = System.nanoTime();
      try (VmdClient client = VmdClient.connect(ClientConfig.of(cluster.metaAddresses())
          .withConnectTimeout(Duration.ofSeconds(1)))) {
        double connect = seconds(t);
        row("connect a client (learn + connect to every member)", connect * 1000, "ms",
            client.cluster().servers().size() + " members known");
        client.namespaces().create("vm", 64L << 20, 2);
        Namespace w = client.attach("vm", true);
        w.writeSync(0, new byte[16384 * 4096]);
        w.release();
        double[] attaches = new double[5];
        for (int i = 0; i < attaches.length; i++) {
          long a0 = System.nanoTime();
          client.attach("vm", true).release();
          attaches[i] = (System.nanoTime() - a0) / 1e6;
        }
        row("attach for writing (64 MiB written, 3 of " + members + " servers hold it)", median(attaches), "ms p50",
            "claim + catch-up + LIST of its server set");
      }
    } finally {
      try (Stream<Path> walk = Files.walk(dir)) {
        walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }

  private void row(String what, double value, String unit, String note) {
    out.printf(Locale.ROOT, "  %-58s %12.1f %-8s %s%n", what, value, unit, note);
    out.flush();
  }
}
