package io.vmd.client;

import io.vmd.common.tls.Role;
import io.vmd.server.MiniVmdCluster;

/**
 * Client configurations for the test kit's cluster, as deployed: with a certificate of the cluster's
 * CA and the kit's seal key when it is secure (the default), plaintext when it was built
 * {@code insecure()}. Published in vmd-client's test-jar for the gateway's and migration's tests.
 */
public final class KitClients {
  /** The name the kit's admin certificate carries. */
  public static final String ADMIN = "ops";

  private KitClients() {}

  /** An admin's configuration: it may create namespaces and claim them (as {@code vmd up}'s own client). */
  public static ClientConfig config(MiniVmdCluster cluster) {
    return config(cluster, ADMIN, Role.ADMIN);
  }

  /** The configuration of a client named {@code name} of {@code role}, sealing under the kit's key. */
  public static ClientConfig config(MiniVmdCluster cluster, String name, Role role) {
    ClientConfig plain = ClientConfig.of(cluster.metaAddresses()).withCluster(cluster.clusterName());
    if (!cluster.secure()) {
      return plain;
    }
    return plain.withTls(cluster.clientTls(name, role)).withSealKey(cluster.sealKey());
  }
}
