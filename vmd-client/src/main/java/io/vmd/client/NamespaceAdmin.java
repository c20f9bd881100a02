package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaException;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Namespaces as a client administers them ({@code client.namespaces()}, as Ratis has its group
 * management API): create, list, delete, and ownership — who writes a namespace, its hand-off to
 * another owner and its fencing. Every namespace here is the control plane's {@link NamespaceMeta}
 * (its {@code record()} is what servers know of it). Blocking.
 */
public final class NamespaceAdmin {
  /** Most copies of a page a namespace may ask for. */
  private static final int MAX_REPLICAS = 8;

  private final VmdClient client;

  NamespaceAdmin(VmdClient client) {
    this.client = client;
  }

  /**
   * A namespace as the control plane holds it now, and whether another client or gateway holds a live
   * lease on it (so that a claim from this client would get it read-only): one linearizable read.
   */
  public record Ownership(NamespaceMeta namespace, boolean ownedByAnother) {}

  /** Every namespace (owner, epoch, server set), linearizable. */
  public List<NamespaceMeta> list() throws VmdException {
    return client.view().namespaces();
  }

  /** {@link #list()} without blocking: for callers on an event loop. */
  public CompletableFuture<List<NamespaceMeta>> listAsync() {
    return client.meta().viewAsync().thenApply(MetaView::namespaces);
  }

  /** The namespace named {@code name}; NO_NAMESPACE when there is none. */
  public NamespaceMeta get(String name) throws VmdException {
    return ownership(name).namespace();
  }

  public Ownership ownership(String name) throws VmdException {
    MetaView v = client.view();
    NamespaceMeta n = v.namespace(name);
    if (n == null) {
      throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    return new Ownership(n, client.ownedByAnother(n, v.nowMillis()));
  }

  /** Creates the namespace in the control plane, with an id never used before; servers learn it from there. */
  public NamespaceMeta create(String name, long sizeBytes, int replicas) throws VmdException {
    if (!NamespaceRecord.validName(name)) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace name '" + name
          + "': use 1-64 characters of letters, digits, '.', '_' or '-'");
    }
    if (sizeBytes < Pages.PAGE_SIZE || sizeBytes % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace size must be a positive multiple of 4096 bytes");
    }
    int serving = 0;
    for (ServerState s : client.membership().members()) {
      serving += s.status() == ServerStatus.ACTIVE ? 1 : 0;
    }
    if (replicas < 1 || replicas > Math.max(1, serving) || replicas > MAX_REPLICAS) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "replica count " + replicas + " needs between 1 and "
          + Math.min(MAX_REPLICAS, Math.max(1, serving)) + " (the cluster has " + serving + " active servers)");
    }
    try {
      // With the cluster's seal key its pages are sealed: a fresh page key, kept in the control plane wrapped.
      byte[] sealKey = client.config().sealKey();
      NamespaceMeta n = client.meta().createNamespace(name, sizeBytes, replicas,
          sealKey == null ? new byte[0] : NamespaceKeys.newWrapped(sealKey, name));
      client.calls().catchUp(List.of(client.membership().members()), n.id(), 0,
          client.config().requestTimeout().toMillis());
      return n;
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /**
   * Deletes the namespace in the control plane; every server drops its pages when it sees that (a
   * server that is down now does when it comes back). This client's own handles of it are released
   * first; a namespace that another owner holds with a live lease is refused unless {@code force}.
   */
  /**
   * Lets the NBD client {@code client} (its certificate's name) open the namespace through gateways
   * that verify their peers ({@code grant}), or no longer; admin only. Returns the namespace after it.
   */
  public NamespaceMeta grant(String name, String client, boolean grant) throws VmdException {
    try {
      return this.client.meta().grant(name, client, grant);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  public void delete(String name, boolean force) throws VmdException {
    client.releaseHandles(name);
    try {
      client.meta().deleteNamespace(name, force);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  public void delete(String name) throws VmdException {
    delete(name, false);
  }

  /** Pages and bytes of the namespace on each server that is not removed. */
  public List<ServerUsage> usage(String name) throws VmdException {
    return usage(get(name));
  }

  /** As {@link #usage(String)}, for a namespace already read. */
  public List<ServerUsage> usage(NamespaceMeta namespace) throws VmdException {
    NamespaceRecord ns = namespace.record();
    List<ServerUsage> out = new ArrayList<>();
    for (ServerState s : client.membership().members()) {
      long pages = 0;
      boolean up = s.up();
      if (up) {
        try {
          pages = client.await(client.calls().to(s.index(), Op.NS_INFO).namespace(ns.id(), 0).send(f -> {
            ByteBuf p = ServerCalls.payload(f);
            Codec.readNamespace(p);
            return p.readLong();
          }));
        } catch (VmdException e) {
          if (e.code() != ErrorCode.NO_NAMESPACE) {
            throw e;
          }
        }
      }
      out.add(new ServerUsage(s.address(), up, pages, pages * Pages.PAGE_SIZE));
    }
    return out;
  }

  /**
   * Hands the namespace to {@code owner} (another client or gateway, by its owner id): its epoch moves
   * on, and the servers refuse the earlier owner's writes from then on.
   */
  public NamespaceMeta handOff(String name, String owner) throws VmdException {
    return claimAndCatchUp(name, owner, true);
  }

  private NamespaceMeta claimAndCatchUp(String name, String owner, boolean force) throws VmdException {
    try {
      MetaClient.Claim c = client.meta().claim(name, owner, client.config().lease(), force, -1);
      NamespaceMeta n = c.namespace();
      List<ServerState> set = new ArrayList<>();
      for (int slot : n.servers()) {
        set.add(client.membership().server(slot));
      }
      client.calls().catchUp(set, n.id(), n.epoch(), client.config().requestTimeout().toMillis());
      return n;
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /**
   * Takes the namespace from whoever writes it and leaves it without an owner: its epoch moves on
   * (the servers are told at once), so the earlier owner's writes are refused from now on, and the
   * next gateway to write it (one standing by for it, such as a migration's destination) claims it.
   * A client that owns the namespace itself (a host's agent fencing its own gateway) needs no force,
   * so no admin's certificate.
   */
  public NamespaceMeta fence(String name) throws VmdException {
    NamespaceMeta current = get(name);
    NamespaceMeta n = claimAndCatchUp(name, client.ownerId(), !client.ownerId().equals(current.owner()));
    try {
      return client.meta().release(n.id(), client.ownerId(), n.epoch());
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }
}
