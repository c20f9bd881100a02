package io.vmd.client;

import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaException;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Attaching a namespace: takes ownership as the {@link VmdClient.Access} says, then rebuilds its
 * location table from what every server of its server set holds (so any host can open a namespace
 * another host wrote), keeping of each page only its newest copies. It waits for every server of the
 * set (up to {@link ClientConfig#attachWait}); pages that only a server still silent could hold read as
 * errors until it answers, never as zeros. A writer deletes the stale and surplus copies it found, and,
 * having heard from every server, takes those holding nothing out of the server set.
 */
final class Attach {
  private static final Logger LOG = LoggerFactory.getLogger(Attach.class);
  /** How often servers that have not listed their pages are asked again. */
  private static final long RETRY_MILLIS = 100;

  private final VmdClient client;
  private final String name;
  private final VmdClient.Access access;

  Attach(VmdClient client, String name, VmdClient.Access access) {
    this.client = client;
    this.name = name;
    this.access = access;
  }

  Namespace run() throws VmdException {
    MetaClient meta = client.meta();
    NamespaceMeta n;
    boolean writable;
    try {
      if (access == VmdClient.Access.READ) {
        n = meta.view().namespace(name);
        if (n == null) {
          throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
        }
        writable = false;
      } else {
        MetaClient.Claim c = meta.claim(name, client.ownerId(), client.config().lease(),
            access == VmdClient.Access.TAKE_OVER, -1);
        n = c.namespace();
        writable = c.grantedTo(client.ownerId());
      }
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
    PageSeal seal = sealOf(n, writable);
    client.refreshMembership();
    Membership membership = client.membership();
    NamespaceRecord ns = n.record();
    LocationTable table = new LocationTable(ns.pages(), ns.replicas());
    NewestCopies copies = new NewestCopies(table, Frame.firstStamp(ns.epoch() + 1) - 1);
    // The servers that may hold pages of it; a removed one's copies are gone.
    List<Integer> set = new ArrayList<>();
    for (int slot : n.servers()) {
      ServerState s = membership.server(slot);
      if (s != null && !s.removed()) {
        set.add(slot);
      }
    }
    List<Integer> listed = new ArrayList<>();
    List<Integer> late = listAll(set, ns, copies, listed);
    if (copies.discardedTotal() > 0) {
      LOG.info("namespace '{}': {} stale or surplus page copies found{}", ns.name(), copies.discardedTotal(),
          writable ? "; deleting them" : "");
    }
    // A new writer stamps above every copy it saw, and above any older writer's (lower epoch).
    long firstStamp = Math.max(Frame.firstStamp(ns.epoch()), copies.maxStamp() + 1);
    Namespace attached = new Namespace(client, n, table, writable, firstStamp,
        late.isEmpty() ? null : new Namespace.Late(copies, late), seal, seal == null ? null : copies.newestStamps());
    if (writable) {
      List<CompletableFuture<Void>> deletes = new ArrayList<>();
      for (int s : listed) {
        deletes.add(attached.deleteCopies(s, copies.discarded(s)));
      }
      client.await(CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0])));
      if (late.isEmpty()) {
        shrinkServerSet(attached, n, listed, table);
      }
    }
    return attached;
  }

  /**
   * The namespace's seal, unwrapped with this client's seal key; null for an unsealed namespace. Without
   * the right key the attach fails, and a claim it made is given back.
   */
  private PageSeal sealOf(NamespaceMeta n, boolean claimed) throws VmdException {
    if (!n.sealed()) {
      return null;
    }
    try {
      byte[] sealKey = client.config().sealKey();
      if (sealKey == null) {
        throw new VmdException(ErrorCode.UNAUTHORIZED, "namespace '" + name + "' is sealed and this host has no "
            + "seal key (seal.key in --certs-dir, from the cluster's admin)");
      }
      return new PageSeal(n.id(), NamespaceKeys.unwrap(sealKey, name, n.wrappedKey()));
    } catch (VmdException e) {
      if (claimed) {
        try {
          client.meta().release(n.id(), client.ownerId(), n.epoch());
        } catch (MetaException ignored) {
          // the lease runs out by itself
        }
      }
      throw e;
    }
  }

  /**
   * Asks every server of {@code set} to catch up and list its pages into {@code copies}, again and
   * again until each has answered or the attach wait is over; fills {@code listed}, returns those
   * that did not answer.
   */
  private List<Integer> listAll(List<Integer> set, NamespaceRecord ns, NewestCopies copies, List<Integer> listed)
      throws VmdException {
    Membership membership = client.membership();
    long deadline = System.nanoTime() + client.config().attachWait().toNanos();
    List<Integer> late = new ArrayList<>(set);
    while (!late.isEmpty()) {
      List<Integer> asking = new ArrayList<>();
      List<CompletableFuture<Void>> lists = new ArrayList<>();
      for (int slot : late) {
        if (membership.server(slot).up()) {
          asking.add(slot);
          lists.add(client.calls().catchUpAndList(slot, ns, copies::offer));
        }
      }
      for (int i = 0; i < lists.size(); i++) {
        try {
          VmdClient.await(lists.get(i), Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
          listed.add(asking.get(i));
        } catch (VmdException e) {
          LOG.warn("namespace '{}': server {} did not list its pages: {}", name, membership.describe(asking.get(i)),
              e.getMessage());
        }
      }
      late.removeAll(listed);
      if (late.isEmpty() || System.nanoTime() - deadline > 0) {
        break;
      }
      VmdClient.sleep(RETRY_MILLIS);
    }
    if (!late.isEmpty()) {
      LOG.warn("namespace '{}': servers {} have not answered in {} ms; pages only they could hold read as "
          + "errors until they do", name, late.stream().map(membership::describe).toList(),
          client.config().attachWait().toMillis());
    }
    return late;
  }

  /**
   * The owner, having heard from every server of the set, takes out of it those that hold nothing of
   * the namespace (and removed ones): later attaches need not wait for them. No other writer can place a
   * page meanwhile (this one owns it), and this one names a server again before it places a page there.
   */
  private void shrinkServerSet(Namespace ns, NamespaceMeta n, List<Integer> listed, LocationTable table) {
    Membership membership = client.membership();
    Map<Integer, Long> held = table.copiesPerServer();
    List<Integer> idle = new ArrayList<>();
    for (int slot : n.servers()) {
      boolean gone = membership.server(slot) == null || membership.server(slot).removed();
      if (gone || (listed.contains(slot) && !held.containsKey(slot))) {
        idle.add(slot);
      }
    }
    if (idle.isEmpty()) {
      return;
    }
    try {
      NamespaceMeta after = client.meta().removeServers(n.id(), client.ownerId(), n.epoch(),
          idle.stream().mapToInt(Integer::intValue).toArray());
      ns.serverSet = after.servers();
      LOG.info("namespace '{}': servers {} hold nothing of it; its server set is now {}", n.name(), idle,
          Arrays.toString(after.servers()));
    } catch (MetaException e) {
      LOG.debug("namespace '{}': server set not shrunk: {}", n.name(), e.getMessage());
    }
  }
}
