package io.vmd.meta;

import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import java.time.Duration;
import java.util.List;

/** A throw-away CA for tests, and the node and client identities it issues. */
final class TestCerts {
  private static final Duration LIFETIME = Duration.ofDays(1);
  private final CertificateAuthority ca = CertificateAuthority.create(LIFETIME);

  ClusterTls node(String... hosts) {
    CertificateAuthority.Issued i = ca.issueNode(List.of(hosts), LIFETIME);
    return ClusterTls.of(ca.certificate(), i.certificate(), i.key());
  }

  ClusterTls client(String name, Role role) {
    CertificateAuthority.Issued i = ca.issueClient(new Identity(name, role), LIFETIME);
    return ClusterTls.of(ca.certificate(), i.certificate(), i.key());
  }
}
