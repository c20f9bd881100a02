package io.vmd.common.tls;

import java.util.Locale;

/**
 * What a certificate's holder may do in a cluster. It is written into the certificate (its subject's
 * OU), so a peer's role is what the cluster's CA signed, never what the peer says.
 */
public enum Role {
  /** Operators and their tools: namespaces, membership, hand-offs, {@code --force}. */
  ADMIN,
  /** A gateway or host agent: claims, renews and releases its own leases; reads and writes pages. */
  GATEWAY,
  /** A memory server: registers itself and reports its own state; serves pages. */
  SERVER,
  /**
   * An NBD client (QEMU, nbd-client) of a gateway that verifies its peers: opens the namespaces it is
   * granted, nothing else; neither the control plane nor the servers take it.
   */
  NBD,
  /**
   * A hypervisor host's agent (vmd host): what a gateway may do, and it registers its own host and
   * records the VMs it runs. Its node certificate names the addresses its API listens on. (Last: the
   * control plane's log stores roles by position.)
   */
  HOST;

  /** Whether this role claims namespaces and reads and writes pages: a gateway, or a host agent's gateway. */
  public boolean attachesNamespaces() {
    return this == GATEWAY || this == HOST;
  }

  /** The name used on the command line and in certificates: lower case. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The role named {@code label}, or IllegalArgumentException naming the choices. */
  public static Role parse(String label) {
    for (Role r : values()) {
      if (r.label().equals(label.trim().toLowerCase(Locale.ROOT))) {
        return r;
      }
    }
    throw new IllegalArgumentException("unknown role '" + label + "' (admin, gateway, server, nbd, host)");
  }
}
