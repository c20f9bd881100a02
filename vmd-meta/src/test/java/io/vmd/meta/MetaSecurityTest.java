package io.vmd.meta;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.protocol.ErrorCode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane of a secure cluster lets each caller do what its certificate's role allows, and
 * nothing to anyone without a certificate from the cluster's CA. Each test fails if its check is
 * removed: the same calls succeed on an insecure cluster.
 */
class MetaSecurityTest {
  private static final Duration SHORT = Duration.ofSeconds(3);
  private static final TestCerts CERTS = new TestCerts();
  private static final ClusterTls ADMIN = CERTS.client("ops", Role.ADMIN);
  private static final ClusterTls GATEWAY_A = CERTS.client("host-a", Role.GATEWAY);
  private static final ClusterTls GATEWAY_B = CERTS.client("host-b", Role.GATEWAY);
  private static final ClusterTls SERVER = CERTS.node("127.0.0.1");

  @TempDir
  static Path dir;
  private static HostPort address;
  private static MetaServer voter;
  private static final SimpleMeterRegistry REGISTRY = new SimpleMeterRegistry();

  @BeforeAll
  static void start() throws Exception {
    address = FreePorts.loopback(1).get(0);
    voter = MetaServer.start(MetaConfig.single(address, dir.resolve("meta"), "sec").withTls(SERVER), REGISTRY);
    try (MetaClient admin = client(ADMIN)) {
      admin.createNamespace("vm1", 1 << 20, 1);
    }
  }

  @AfterAll
  static void stop() {
    voter.close();
  }

  private static MetaClient client(ClusterTls tls) {
    return MetaClient.connect("sec", List.of(address), Duration.ofSeconds(15), tls);
  }

  private static void assertDenied(ThrowingCall call) {
    assertThatThrownBy(call::run).isInstanceOfSatisfying(MetaException.class,
        e -> assertThat(e.code()).as(e.getMessage()).isEqualTo(ErrorCode.UNAUTHORIZED));
  }

  @FunctionalInterface
  interface ThrowingCall {
    void run() throws Exception;
  }

  @Test
  void withoutACertificateOrWithAnotherCasNothingIsReadOrChanged() throws Exception {
    ClusterTls stranger = new TestCerts().client("ops", Role.ADMIN);
    for (ClusterTls tls : new ClusterTls[] {null, stranger}) {
      try (MetaClient c = MetaClient.connect("sec", List.of(address), SHORT, tls)) {
        assertThatThrownBy(c::view).isInstanceOfSatisfying(MetaException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE));
        assertThatThrownBy(() -> c.deleteNamespace("vm1", true)).isInstanceOf(MetaException.class);
      }
    }
    try (MetaClient admin = client(ADMIN)) {
      assertThat(admin.view().namespaces()).extracting(NamespaceMeta::name).contains("vm1");
    }
  }

  @Test
  void aGatewayCannotDeleteCreateForceOrRemoveAServer() throws Exception {
    try (MetaClient server = client(SERVER); MetaClient gw = client(GATEWAY_A)) {
      Member m = server.register("srv-1", new HostPort("127.0.0.1", 7001), false);
      assertDenied(() -> gw.deleteNamespace("vm1", true));
      assertDenied(() -> gw.deleteNamespace("vm1", false));
      assertDenied(() -> gw.createNamespace("mine", 1 << 20, 1));
      assertDenied(() -> gw.claim("vm1", "host-a/gw", Duration.ofSeconds(5), true, -1));
      assertDenied(() -> gw.setStatus(m.slot(), ServerStatus.REMOVED));
      assertDenied(() -> gw.register("fake", new HostPort("127.0.0.1", 7001), false));
      assertThat(gw.view().namespaces()).extracting(NamespaceMeta::name).contains("vm1");
    }
  }

  @Test
  void aServerMayRegisterOnlyItselfAndClaimsNothing() throws Exception {
    try (MetaClient server = client(SERVER)) {
      assertDenied(() -> server.claim("vm1", "127.0.0.1/x", Duration.ofSeconds(5), false, -1));
      assertDenied(() -> server.register("elsewhere", new HostPort("10.1.2.3", 7001), false));
      assertDenied(() -> server.createNamespace("x", 1 << 20, 1));
      Member m = server.register("srv-2", new HostPort("127.0.0.1", 7002), false);
      assertThat(server.setStatus(m.slot(), ServerStatus.ACTIVE).status()).isEqualTo(ServerStatus.ACTIVE);
      assertDenied(() -> server.setStatus(m.slot(), ServerStatus.REMOVED));
    }
    // Another host's node certificate (named "localhost", valid for 127.0.0.1 too) cannot take srv-2 over.
    try (MetaClient stranger = client(CERTS.node("localhost", "127.0.0.1"))) {
      assertDenied(() -> stranger.register("srv-2", new HostPort("127.0.0.1", 7003), false));
    }
  }

  @Test
  void ownerIdsCannotBeSpoofed() throws Exception {
    try (MetaClient a = client(GATEWAY_A); MetaClient b = client(GATEWAY_B); MetaClient admin = client(ADMIN)) {
      admin.createNamespace("vm-owned", 1 << 20, 1);
      MetaClient.Claim c = a.claim("vm-owned", "host-a/gw-1", Duration.ofSeconds(30), false, -1);
      assertThat(c.grantedTo("host-a/gw-1")).isTrue();
      NamespaceMeta n = c.namespace();
      assertDenied(() -> b.claim("vm-owned", "host-a/gw-1", Duration.ofSeconds(30), false, -1));
      assertDenied(() -> b.release(n.id(), "host-a/gw-1", n.epoch()));
      assertDenied(() -> b.removeServers(n.id(), "host-a/gw-1", n.epoch(), new int[0]));
      assertThatThrownBy(() -> b.renewAsync("host-a/gw-1", Duration.ofSeconds(30)).join())
          .isInstanceOf(CompletionException.class).cause().isInstanceOfSatisfying(MetaException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAUTHORIZED));
      // b's own claim is answered but not granted: a holds a live lease.
      assertThat(b.claim("vm-owned", "host-b/gw", Duration.ofSeconds(30), false, -1).grantedTo("host-b/gw")).isFalse();
      NamespaceMeta after = admin.view().namespaces().stream().filter(x -> x.name().equals("vm-owned")).findFirst()
          .orElseThrow();
      assertThat(after.owner()).isEqualTo("host-a/gw-1");
      assertThat(after.epoch()).isEqualTo(n.epoch());
      // The admin may hand it over, by force.
      assertThat(admin.claim("vm-owned", "host-b/gw", Duration.ofSeconds(30), true, -1).grantedTo("host-b/gw"))
          .isTrue();
      assertThat(a.renewAsync("host-a/gw-1", Duration.ofSeconds(30)).join()).doesNotContainKey(n.id());
    }
  }

  @Test
  void ratisAdminCallsNeedAnAdminCertificate() throws Exception {
    RaftPeerId peer = MetaPeers.peerId(address);
    for (ClusterTls tls : new ClusterTls[] {GATEWAY_A, SERVER}) {
      try (RaftClient raft = RaftClient.newBuilder().setProperties(MetaTransport.properties())
          .setParameters(MetaTransport.parameters(tls, false))
          .setRaftGroup(MetaPeers.group("sec", List.of(address))).build()) {
        assertThatThrownBy(() -> raft.getGroupManagementApi(peer).list()).hasMessageContaining("PERMISSION_DENIED");
      }
    }
    try (RaftClient raft = RaftClient.newBuilder().setProperties(MetaTransport.properties())
        .setParameters(MetaTransport.parameters(ADMIN, false))
        .setRaftGroup(MetaPeers.group("sec", List.of(address))).build()) {
      assertThat(raft.getGroupManagementApi(peer).list().getGroupIds()).hasSize(1);
    }
    assertThat(failures("role")).as("refused calls counted").isGreaterThanOrEqualTo(2);
  }

  private static double failures(String reason) {
    var c = REGISTRY.find("vmd.auth.failures").tag("role", "meta").tag("reason", reason).counter();
    return c == null ? 0 : c.count();
  }

  @Test
  void anUnsignedOrAlteredCommandNeverEntersTheLog() throws Exception {
    byte[] delete = MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_DELETE);
      o.writeUTF("vm1");
      o.writeBoolean(true);
    });
    byte[] signed = SignedCommands.seal(delete, GATEWAY_A);
    byte[] altered = signed.clone();
    altered[altered.length - 80] ^= 1; // inside the command or the signature: either way it no longer verifies
    // With MetaClient's retry policy: the refusal is an answer, not retried until the deadline.
    try (RaftClient raft = RaftClient.newBuilder().setProperties(MetaTransport.properties())
        .setParameters(MetaTransport.parameters(ADMIN, false)).setRetryPolicy(MetaClient.retryPolicy(SHORT))
        .setRaftGroup(MetaPeers.group("sec", List.of(address))).build()) {
      for (byte[] bad : new byte[][] {SignedCommands.seal(delete, null), altered}) {
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> raft.io().send(Message.valueOf(ByteString.copyFrom(bad))))
            .hasMessageMatching("(?s).*(unsigned|signature).*");
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms to the refusal").isLessThan(SHORT.toMillis() / 2);
      }
    }
    assertThat(failures("signature")).isGreaterThanOrEqualTo(2);
    try (MetaClient admin = client(ADMIN)) {
      assertThat(admin.view().namespaces()).extracting(NamespaceMeta::name).contains("vm1");
    }
  }
}
