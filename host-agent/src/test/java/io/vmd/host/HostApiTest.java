package io.vmd.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.vmd.common.HostPort;
import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.migration.qemu.QemuMigration;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** The host agent's API answers only admins and hosts of its cluster's CA, and knows who asks. */
class HostApiTest {
  private static final Duration DAY = Duration.ofDays(1);
  private static final Duration DEADLINE = Duration.ofSeconds(10);
  private final CertificateAuthority ca = CertificateAuthority.create(DAY);

  private static ClusterTls tls(CertificateAuthority by, CertificateAuthority.Issued c) {
    return ClusterTls.of(by.certificate(), c.certificate(), c.key());
  }

  private ClusterTls client(CertificateAuthority by, String name, Role role) {
    return tls(by, by.issueClient(new Identity(name, role), DAY));
  }

  /** VMs in a map: what the API carries and refuses, without QEMU. */
  private static final class FakeVms implements HostService {
    final Map<String, HostApi.VmInfo> vms = new TreeMap<>();

    @Override
    public synchronized HostApi.VmInfo startVm(HostApi.StartVm r) {
      if (r.memoryBytes() < (64 << 20)) {
        throw new IllegalArgumentException("a VM needs at least 64 MiB of memory");
      }
      if (vms.containsKey(r.name())) {
        throw new IllegalStateException("VM '" + r.name() + "' already runs");
      }
      HostApi.VmInfo v = new HostApi.VmInfo(r.name(), r.namespace(), r.memoryBytes(), "running", r.memoryBytes());
      vms.put(r.name(), v);
      return v;
    }

    @Override
    public synchronized HostApi.VmInfo stopVm(String name) {
      HostApi.VmInfo v = vms.remove(name);
      if (v == null) {
        throw new IllegalStateException("no VM '" + name + "'");
      }
      return new HostApi.VmInfo(name, v.namespace(), v.memoryBytes(), "stopped", 0);
    }

    @Override
    public synchronized List<HostApi.VmInfo> listVms() {
      return List.copyOf(vms.values());
    }

    final CountDownLatch cancelled = new CountDownLatch(1);
    volatile Identity incomingCaller;

    /** Three steps and a result; a VM named "slow" waits until its caller gives up. */
    @Override
    public QemuMigration.Result migrate(HostApi.Migrate r, Consumer<HostApi.MigrationUpdate> progress,
        BooleanSupplier gaveUp) throws Exception {
      for (int i = 1; i <= 3; i++) {
        progress.accept(new HostApi.MigrationUpdate("active", i << 20, (3 - i) << 20, null));
      }
      if (r.name().equals("slow")) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!gaveUp.getAsBoolean() && System.nanoTime() < deadline) {
          Thread.sleep(10);
        }
        if (gaveUp.getAsBoolean()) {
          cancelled.countDown();
        }
        throw new IllegalStateException("cancelled");
      }
      return new QemuMigration.Result(QemuMigration.Policy.parse(r.policy()), "completed", 42, 3, 3 << 20, 1 << 20,
          2 << 20, 0, 0, 7, 2, 10, 1, false, -1);
    }

    @Override
    public synchronized HostApi.VmInfo balloonVm(String name, long bytes) {
      HostApi.VmInfo v = vms.get(name);
      if (v == null) {
        throw new IllegalStateException("no VM '" + name + "'");
      }
      return new HostApi.VmInfo(name, v.namespace(), v.memoryBytes(), "running", bytes);
    }

    @Override
    public HostApi.VmInfo takeNamespace(String name, Identity caller) {
      return new HostApi.VmInfo(name, "swap-1", 1 << 30, "inmigrate", 0);
    }

    @Override
    public HostApi.IncomingAt prepareIncoming(HostApi.Incoming r, Identity caller) {
      incomingCaller = caller;
      return new HostApi.IncomingAt("127.0.0.1", 4444);
    }
  }

  private static Status.Code codeOf(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  @Test
  void adminsAndHostsOfTheCaAreAnsweredAndNobodyElse() throws Exception {
    ClusterTls agent = tls(ca, ca.issueNode(List.of("hv-a", "127.0.0.1"), Role.HOST, DAY));
    try (HostApiServer server = HostApiServer.start(new HostPort("127.0.0.1", 0), agent, "test", new FakeVms())) {
      HostPort at = new HostPort("127.0.0.1", server.port());
      try (HostApiClient admin = HostApiClient.connect(at, client(ca, "ops", Role.ADMIN), DEADLINE)) {
        HostApi.Status s = admin.status();
        assertThat(s.host()).isEqualTo("hv-a");
        assertThat(s.version()).isEqualTo("test");
        assertThat(s.caller()).isEqualTo("admin ops");
        // VM calls, and the caller's mistakes as gRPC statuses with their reason.
        assertThat(admin.startVm(new HostApi.StartVm("web", "swap-1", 256L << 20, false, null)).status()).isEqualTo("running");
        assertThat(admin.listVms()).extracting(HostApi.VmInfo::name).containsExactly("web");
        assertThatThrownBy(() -> admin.startVm(new HostApi.StartVm("web", "swap-1", 256L << 20, false, null)))
            .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
              assertThat(e.getStatus().getDescription()).contains("already runs");
            });
        assertThat(codeOf(() -> admin.startVm(new HostApi.StartVm("tiny", "swap-1", 1 << 20, false, null))))
            .isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(admin.balloonVm("web", 128L << 20).balloonBytes()).isEqualTo(128L << 20);
        assertThat(codeOf(() -> admin.balloonVm("nope", 128L << 20))).isEqualTo(Status.Code.FAILED_PRECONDITION);
        assertThat(admin.stopVm("web").status()).isEqualTo("stopped");
      }
      ClusterTls otherHost = tls(ca, ca.issueNode(List.of("hv-b", "127.0.0.2"), Role.HOST, DAY));
      try (HostApiClient peer = HostApiClient.connect(at, otherHost, DEADLINE)) {
        assertThat(peer.status().caller()).isEqualTo("host hv-b");
      }
      // A gateway's or an NBD client's certificate of the same CA: connected, and refused.
      for (Role role : List.of(Role.GATEWAY, Role.NBD, Role.SERVER)) {
        try (HostApiClient c = HostApiClient.connect(at, client(ca, "x", role), DEADLINE)) {
          assertThat(codeOf(c::status)).as(role.label()).isEqualTo(Status.Code.PERMISSION_DENIED);
          assertThat(codeOf(() -> c.startVm(new HostApi.StartVm("x", "swap-1", 256L << 20, false, null))))
              .as(role.label()).isEqualTo(Status.Code.PERMISSION_DENIED);
        }
      }
      // Another CA's admin, or no TLS at all: no connection.
      try (HostApiClient stranger = HostApiClient.connect(at, client(CertificateAuthority.create(DAY), "ops",
          Role.ADMIN), DEADLINE)) {
        assertThat(codeOf(stranger::status)).isEqualTo(Status.Code.UNAVAILABLE);
      }
      try (HostApiClient plain = HostApiClient.connect(at, null, DEADLINE)) {
        assertThat(codeOf(plain::status)).isEqualTo(Status.Code.UNAVAILABLE);
      }
    }
  }

  @Test
  void aMigrationStreamsItsProgressAndItsCallerGoingAwayCancelsIt() throws Exception {
    ClusterTls agent = tls(ca, ca.issueNode(List.of("hv-a", "127.0.0.1"), Role.HOST, DAY));
    FakeVms vms = new FakeVms();
    try (HostApiServer server = HostApiServer.start(new HostPort("127.0.0.1", 0), agent, "test", vms)) {
      HostPort at = new HostPort("127.0.0.1", server.port());
      try (HostApiClient admin = HostApiClient.connect(at, client(ca, "ops", Role.ADMIN), DEADLINE)) {
        List<HostApi.MigrationUpdate> seen = new ArrayList<>();
        QemuMigration.Result r = admin.migrate(new HostApi.Migrate("web", "hv-b", "agile", 1 << 27, 5000), seen::add);
        assertThat(seen).extracting(HostApi.MigrationUpdate::transferredBytes).startsWith(1L << 20, 2L << 20, 3L << 20);
        assertThat(r.policy()).isEqualTo(QemuMigration.Policy.AGILE);
        assertThat(r.postcopyRequests()).as("every field crosses the wire").isEqualTo(7);
        assertThat(seen.get(seen.size() - 1).result()).isEqualTo(r);
      }
      // The caller's deadline (the migration's timeout and 300 ms) passes: the agent sees it gave up.
      try (HostApiClient hasty = HostApiClient.connect(at, client(ca, "ops", Role.ADMIN), Duration.ofMillis(300))) {
        assertThat(codeOf(() -> hasty.migrate(new HostApi.Migrate("slow", "hv-b", "agile", 1 << 27, 200), u -> { })))
            .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
      }
      assertThat(vms.cancelled.await(20, TimeUnit.SECONDS)).isTrue();
      ClusterTls otherHost = tls(ca, ca.issueNode(List.of("hv-b", "127.0.0.2"), Role.HOST, DAY));
      try (HostApiClient peer = HostApiClient.connect(at, otherHost, DEADLINE)) {
        assertThat(peer.prepareIncoming(new HostApi.Incoming("web", "agile", 1000)).port()).isEqualTo(4444);
        assertThat(vms.incomingCaller).as("read from its certificate").isEqualTo(new Identity("hv-b", Role.HOST));
      }
    }
  }

  @Test
  void theAgentsCertificateMustNameTheAddressDialled() throws Exception {
    ClusterTls agent = tls(ca, ca.issueNode(List.of("hv-a", "10.9.9.9"), Role.HOST, DAY));
    try (HostApiServer server = HostApiServer.start(new HostPort("127.0.0.1", 0), agent, "test", new FakeVms());
         HostApiClient admin = HostApiClient.connect(new HostPort("127.0.0.1", server.port()),
             client(ca, "ops", Role.ADMIN), DEADLINE)) {
      assertThatThrownBy(admin::status).isInstanceOf(StatusRuntimeException.class);
    }
  }
}
