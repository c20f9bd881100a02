package io.vmd.meta;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three voters in one JVM, talking mutual TLS as a secure cluster does: leader loss in the middle of
 * commands, and a voter back from its snapshot.
 */
class MetaGroupTest {
  private static final TestCerts CERTS = new TestCerts();
  private static final ClusterTls NODE = CERTS.node("127.0.0.1");
  private static final ClusterTls ADMIN = CERTS.client("ops", Role.ADMIN);

  @TempDir
  Path dir;

  private final List<MetaServer> voters = new ArrayList<>();
  private List<HostPort> addresses;

  private void start(int n) {
    addresses = FreePorts.loopback(n);
    for (HostPort a : addresses) {
      voters.add(MetaServer.start(config(a)));
    }
  }

  private MetaConfig config(HostPort a) {
    return new MetaConfig(a, addresses, dir.resolve("voter-" + a.port()), "test", 50, NODE);
  }

  @AfterEach
  void stop() {
    voters.forEach(v -> {
      if (v != null) {
        v.close();
      }
    });
  }

  private int leader() {
    await().atMost(Duration.ofSeconds(20)).until(() -> voters.stream().anyMatch(v -> v != null && v.isLeader()));
    for (int i = 0; i < voters.size(); i++) {
      if (voters.get(i) != null && voters.get(i).isLeader()) {
        return i;
      }
    }
    throw new AssertionError();
  }

  @Test
  void aCreateCaughtByALeaderKillHappensOnceOrNotAtAll() throws Exception {
    start(3);
    try (MetaClient c = MetaClient.connect("test", addresses, MetaConfig.REQUEST_DEADLINE, ADMIN)) {
      c.createNamespace("warm", 1 << 20, 1);
      int l = leader();
      CompletableFuture<Object> create = CompletableFuture.supplyAsync(() -> {
        try {
          return c.createNamespace("vm1", 1 << 20, 2);
        } catch (MetaException e) {
          return e;
        }
      });
      voters.get(l).close();
      voters.set(l, null);
      Object result = create.get();
      MetaView v = c.view();
      List<NamespaceMeta> named = v.namespaces().stream().filter(n -> n.name().equals("vm1")).toList();
      if (result instanceof NamespaceMeta made) {
        // The retry on the new leader was answered from its retry cache, not applied twice.
        assertThat(named).containsExactly(made);
      } else {
        assertThat(named).hasSizeLessThanOrEqualTo(1);
      }
      NamespaceMeta next = c.createNamespace("vm2", 1 << 20, 2);
      assertThat(v.namespaces()).allMatch(n -> n.id() < next.id());
    }
  }

  @Test
  void aClaimCaughtByALeaderKillMovesTheEpochOnce() throws Exception {
    start(3);
    try (MetaClient c = MetaClient.connect("test", addresses, MetaConfig.REQUEST_DEADLINE, ADMIN)) {
      c.createNamespace("vm1", 1 << 20, 2);
      int l = leader();
      CompletableFuture<Object> claim = CompletableFuture.supplyAsync(() -> {
        try {
          return c.claim("vm1", "gw-a", Duration.ofSeconds(30), false, -1);
        } catch (MetaException e) {
          return e;
        }
      });
      voters.get(l).close();
      voters.set(l, null);
      Object result = claim.get();
      NamespaceMeta now = c.view().namespace("vm1");
      if (result instanceof MetaClient.Claim granted) {
        assertThat(granted.grantedTo("gw-a")).isTrue();
        assertThat(now.epoch()).isEqualTo(granted.namespace().epoch()).isEqualTo(1);
      } else {
        assertThat(now.epoch()).isLessThanOrEqualTo(1);
      }
      // Another claimant is kept out while gw-a's lease runs, and a hand-off moves the epoch by one.
      assertThat(c.claim("vm1", "gw-b", Duration.ofSeconds(30), false, -1).grantedTo("gw-b"))
          .isEqualTo(now.epoch() == 0);
      MetaClient.Claim forced = c.claim("vm1", "gw-b", Duration.ofSeconds(30), true, -1);
      assertThat(forced.namespace().epoch()).isEqualTo(c.view().namespace("vm1").epoch());
      assertThat(forced.grantedTo("gw-b")).isTrue();
    }
  }

  @Test
  void aVoterRestartedFromItsSnapshotCatchesUp() throws Exception {
    start(3);
    try (MetaClient c = MetaClient.connect("test", addresses, MetaConfig.REQUEST_DEADLINE, ADMIN)) {
      c.register("s1", HostPort.parse("127.0.0.1:7401"), true);
      // More entries than the snapshot interval (50), so the voters snapshot and purge.
      for (int i = 0; i < 120; i++) {
        c.createNamespace("ns" + i, 1 << 20, 1);
      }
      int victim = (leader() + 1) % 3;
      Path victimDir = config(addresses.get(victim)).dir();
      voters.get(victim).snapshot();
      voters.get(victim).close();
      voters.set(victim, null);
      for (int i = 0; i < 10; i++) {
        c.deleteNamespace("ns" + i, false);
      }
      assertThat(Files.walk(victimDir).anyMatch(p -> p.getFileName().toString().startsWith("snapshot.")))
          .isTrue();
      voters.set(victim, MetaServer.start(config(addresses.get(victim))));
      MetaView expected = c.view();
      await().atMost(Duration.ofSeconds(20))
          .until(() -> voters.get(victim).localView().version() == expected.version());
      assertThat(voters.get(victim).localView().namespaces()).isEqualTo(expected.namespaces());
      assertThat(voters.get(victim).localView().servers()).isEqualTo(expected.servers());
    }
  }

  @Test
  void aSingleVoterKeepsItsStateAcrossARestart() throws Exception {
    start(1);
    try (MetaClient c = MetaClient.connect("test", addresses, MetaConfig.REQUEST_DEADLINE, ADMIN)) {
      c.createNamespace("a", 1 << 20, 1);
      c.createNamespace("b", 1 << 20, 1);
      c.deleteNamespace("b", false);
    }
    voters.get(0).close();
    voters.set(0, MetaServer.start(config(addresses.get(0))));
    try (MetaClient c = MetaClient.connect("test", addresses, MetaConfig.REQUEST_DEADLINE, ADMIN)) {
      assertThat(c.view().namespaces()).extracting(NamespaceMeta::name).containsExactly("a");
      assertThat(c.createNamespace("c", 1 << 20, 1).id()).isEqualTo(3);
    }
  }
}
