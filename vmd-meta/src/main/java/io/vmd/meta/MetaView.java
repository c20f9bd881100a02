package io.vmd.meta;

import java.util.List;

/**
 * Everything the control plane holds, at one version: what servers and clients cache and follow.
 *
 * @param version grows with every change
 * @param nowMillis the control plane's clock at that version (leases are judged against it)
 */
public record MetaView(long version, long nowMillis, List<Member> servers, List<NamespaceMeta> namespaces,
    List<Tombstone> tombstones) {

  public MetaView {
    servers = List.copyOf(servers);
    namespaces = List.copyOf(namespaces);
    tombstones = List.copyOf(tombstones);
  }

  public NamespaceMeta namespace(String name) {
    for (NamespaceMeta n : namespaces) {
      if (n.name().equals(name)) {
        return n;
      }
    }
    return null;
  }

  public NamespaceMeta namespace(int id) {
    for (NamespaceMeta n : namespaces) {
      if (n.id() == id) {
        return n;
      }
    }
    return null;
  }

  public Member server(int slot) {
    for (Member m : servers) {
      if (m.slot() == slot) {
        return m;
      }
    }
    return null;
  }
}
