package io.vmd.meta;

import java.util.List;

/**
 * Everything the control plane holds, at one version: what servers and clients cache and follow.
 *
 * @param clusterId chosen when the group first applies a command: a persisted server remembers it, so
 *     it never serves its pages to another control plane (where the same namespace ids mean other VMs)
 * @param version grows with every change
 * @param nowMillis the control plane's clock at that version (leases are judged against it)
 * @param nextNamespaceId every namespace id below it has been given out: one of them that is not live
 *     was deleted
 * @param hosts the hypervisor hosts whose agents registered
 * @param vms the VMs those agents run, by name
 */
public record MetaView(long clusterId, long version, long nowMillis, int nextNamespaceId, List<Member> servers,
    List<NamespaceMeta> namespaces, List<Tombstone> tombstones, List<HostMeta> hosts, List<VmMeta> vms) {

  public MetaView {
    servers = List.copyOf(servers);
    namespaces = List.copyOf(namespaces);
    tombstones = List.copyOf(tombstones);
    hosts = List.copyOf(hosts);
    vms = List.copyOf(vms);
  }

  public HostMeta host(String name) {
    for (HostMeta h : hosts) {
      if (h.name().equals(name)) {
        return h;
      }
    }
    return null;
  }

  public VmMeta vm(String name) {
    for (VmMeta v : vms) {
      if (v.name().equals(name)) {
        return v;
      }
    }
    return null;
  }

  public NamespaceMeta namespace(String name) {
    for (NamespaceMeta n : namespaces) {
      if (n.name().equals(name)) {
        return n;
      }
    }
    return null;
  }

  /** Whether namespace {@code id} was given out and has been deleted since. */
  public boolean deleted(int id) {
    return id < nextNamespaceId && namespace(id) == null;
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
