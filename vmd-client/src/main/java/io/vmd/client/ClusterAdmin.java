package io.vmd.client;

import io.vmd.common.HostPort;
import io.vmd.meta.HostMeta;
import io.vmd.meta.HostStatus;
import io.vmd.meta.Member;
import io.vmd.meta.MetaException;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.meta.ServerStatus;
import io.vmd.meta.VmMeta;
import io.vmd.protocol.ErrorCode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's members as a client administers them ({@code client.cluster()}, as Ratis has
 * {@code admin()}): who they are, their state and memory, and a server's drain and removal. Blocking.
 */
public final class ClusterAdmin {
  private static final Logger LOG = LoggerFactory.getLogger(ClusterAdmin.class);
  /** How often a drain looks again at what the server still holds. */
  private static final long DRAIN_POLL_MILLIS = 500;
  /** Pages per second a drain copies of namespaces nobody owns. */
  private static final int DRAIN_RATE = 16_384;

  private final VmdClient client;

  ClusterAdmin(VmdClient client) {
    this.client = client;
  }

  /** Every server the control plane knows, removed ones included, linearizable. */
  public List<Member> members() throws VmdException {
    return client.view().servers();
  }

  /** The hypervisor hosts whose agents registered, linearizable. */
  public List<HostMeta> hosts() throws VmdException {
    return client.view().hosts();
  }

  /** Host {@code name}, or null when none registered under it, linearizable. */
  public HostMeta host(String name) throws VmdException {
    return client.view().host(name);
  }

  /** The VMs the hosts' agents recorded, linearizable. */
  public List<VmMeta> vms() throws VmdException {
    return client.view().vms();
  }

  /** The record of VM {@code name}, or null, linearizable. */
  public VmMeta vm(String name) throws VmdException {
    return client.view().vm(name);
  }

  /** Registers host {@code name} (a host agent registers itself; its certificate must name {@code api}'s host). */
  public HostMeta registerHost(String name, HostPort api) throws VmdException {
    try {
      return client.meta().registerHost(name, api);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /** Drains, reactivates or (REMOVED) forgets a host; admins only. */
  public void setHostStatus(String name, HostStatus status) throws VmdException {
    try {
      client.meta().setHostStatus(name, status);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /** Records {@code vm} if its record is still at {@code expectedGeneration} (0: new); returns it as stored. */
  public VmMeta putVm(VmMeta vm, long expectedGeneration) throws VmdException {
    try {
      return client.meta().putVm(vm, expectedGeneration);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /** Every known server that is not removed from the cluster, by slot order, as this client sees it now. */
  public List<ServerInfo> servers() {
    List<ServerInfo> out = new ArrayList<>();
    for (ServerState s : client.membership().members()) {
      out.add(s.info());
    }
    return out;
  }

  /** The server with this slot as this client sees it now, or null when there is none (or it is unknown yet). */
  public ServerInfo server(int slot) {
    ServerState s = client.membership().server(slot);
    return s == null ? null : s.info();
  }

  /** Asks every live server for its availability now, rather than waiting for the next push. */
  public List<ServerInfo> refreshAvailability() {
    for (ServerState s : client.membership().members()) {
      if (s.up()) {
        try {
          s.report(client.await(client.calls().availability(s.index())));
        } catch (VmdException e) {
          LOG.warn("{}", e.getMessage());
        }
      }
    }
    return servers();
  }

  /**
   * Changes a server's state in the control plane: ACTIVE (admit it to placement), DRAINING (its pages
   * move off it), REMOVED (gone for good). Removing one that still holds pages, or cannot be asked, is
   * refused unless {@code force}: its copies are then declared lost.
   */
  public Member setStatus(int slot, ServerStatus status, boolean force) throws VmdException {
    if (status == ServerStatus.REMOVED && !force) {
      ServerState s = client.membership().server(slot);
      if (s == null || !s.up()) {
        throw new VmdException(ErrorCode.UNAVAILABLE, "server slot " + slot + " is down: it cannot say it holds"
            + " nothing; drain it while it is up, or remove it with --force (its pages are then lost)");
      }
      long pages = client.await(client.calls().availability(slot)).pages();
      if (pages > 0) {
        throw new VmdException(ErrorCode.EXISTS, "server " + s.address() + " still holds " + pages
            + " pages: drain it first (vmd cluster drain), or remove it with --force (its pages are then lost)");
      }
    }
    try {
      Member m = client.meta().setStatus(slot, status);
      client.refreshMembership();
      return m;
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /**
   * Drains a server: marks it DRAINING (no new pages go there) and moves its pages off, waiting up to
   * {@code timeout} until it holds none. Namespaces another client or gateway owns are moved by their
   * owner's {@link Repairer}; those nobody owns are taken here, repaired and given back. Returns the
   * pages it still holds (0: it may be removed).
   */
  public long drain(int slot, Duration timeout) throws VmdException {
    return drain(slot, timeout, held -> { });
  }

  /** As above, telling {@code progress} how many pages the server still holds at every poll. */
  public long drain(int slot, Duration timeout, LongConsumer progress) throws VmdException {
    setStatus(slot, ServerStatus.DRAINING, false);
    long deadline = System.nanoTime() + timeout.toNanos();
    try (Repairer repairer = new Repairer(client, Duration.ZERO, DRAIN_RATE)) {
      while (true) {
        long held = client.await(client.calls().availability(slot)).pages();
        progress.accept(held);
        if (held == 0 || System.nanoTime() - deadline > 0) {
          return held;
        }
        MetaView v = client.view();
        for (NamespaceMeta n : v.namespaces()) {
          if (n.holds(slot) && !client.ownedByAnother(n, v.nowMillis())) {
            moveOff(n, repairer);
          }
        }
        VmdClient.sleep(DRAIN_POLL_MILLIS);
      }
    }
  }

  /** Takes a namespace nobody owns, copies its pages off draining servers, and gives it back. */
  private void moveOff(NamespaceMeta n, Repairer repairer) throws VmdException {
    Namespace ns = client.attach(n.name(), VmdClient.Access.CLAIM);
    try {
      if (ns.writable()) {
        repairer.repairNow(ns);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted");
    } finally {
      ns.release();
    }
  }
}
