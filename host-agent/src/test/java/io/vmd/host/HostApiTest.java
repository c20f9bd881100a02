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
import java.time.Duration;
import java.util.List;
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
    try (HostApiServer server = HostApiServer.start(new HostPort("127.0.0.1", 0), agent, "test")) {
      HostPort at = new HostPort("127.0.0.1", server.port());
      try (HostApiClient admin = HostApiClient.connect(at, client(ca, "ops", Role.ADMIN), DEADLINE)) {
        HostApi.Status s = admin.status();
        assertThat(s.host()).isEqualTo("hv-a");
        assertThat(s.version()).isEqualTo("test");
        assertThat(s.caller()).isEqualTo("admin ops");
      }
      ClusterTls otherHost = tls(ca, ca.issueNode(List.of("hv-b", "127.0.0.2"), Role.HOST, DAY));
      try (HostApiClient peer = HostApiClient.connect(at, otherHost, DEADLINE)) {
        assertThat(peer.status().caller()).isEqualTo("host hv-b");
      }
      // A gateway's or an NBD client's certificate of the same CA: connected, and refused.
      for (Role role : List.of(Role.GATEWAY, Role.NBD, Role.SERVER)) {
        try (HostApiClient c = HostApiClient.connect(at, client(ca, "x", role), DEADLINE)) {
          assertThat(codeOf(c::status)).as(role.label()).isEqualTo(Status.Code.PERMISSION_DENIED);
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
  void theAgentsCertificateMustNameTheAddressDialled() throws Exception {
    ClusterTls agent = tls(ca, ca.issueNode(List.of("hv-a", "10.9.9.9"), Role.HOST, DAY));
    try (HostApiServer server = HostApiServer.start(new HostPort("127.0.0.1", 0), agent, "test");
         HostApiClient admin = HostApiClient.connect(new HostPort("127.0.0.1", server.port()),
             client(ca, "ops", Role.ADMIN), DEADLINE)) {
      assertThatThrownBy(admin::status).isInstanceOf(StatusRuntimeException.class);
    }
  }
}
