package io.vmd.client;

import io.netty.channel.EventLoop;
import io.vmd.meta.Member;
import io.vmd.meta.MetaView;
import io.vmd.meta.ServerStatus;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The servers a client knows, as the control plane lists them, and its connections to them: servers
 * that join are connected (one connection per event loop), changed states are noted, a removed
 * server's connections are closed for good. Placement and the page paths read the live arrays.
 */
final class Membership {
  private static final Logger LOG = LoggerFactory.getLogger(Membership.class);

  private final ClientConfig config;
  private final EventLoop[] loops;
  /** Servers by slot (index = slot; null where none); replaced whole when membership changes. */
  private volatile ServerState[] bySlot = new ServerState[1];
  /** Every known server that is not removed, for placement and scans. */
  private volatile ServerState[] members = new ServerState[0];
  private volatile long version = -1;

  Membership(ClientConfig config, EventLoop[] loops) {
    this.config = config;
    this.loops = loops;
  }

  long version() {
    return version;
  }

  /** Every known server that is not removed, by slot order: the live array, not to be changed. */
  ServerState[] members() {
    return members;
  }

  /** The server with this slot, or null when there is none (or it is unknown yet). */
  ServerState server(int slot) {
    ServerState[] a = bySlot;
    return slot > 0 && slot < a.length ? a[slot] : null;
  }

  String describe(int slot) {
    ServerState s = server(slot);
    return s == null ? "server slot " + slot : s.address().toString();
  }

  /**
   * Whether a namespace's pages may sit on servers that will not keep them: one removed from the
   * cluster since this client learned of it, or one draining.
   */
  boolean lostServers() {
    for (ServerState s : bySlot) {
      if (s != null && (s.removed() || s.status() == ServerStatus.DRAINING)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Takes the view's membership: new servers are connected (the futures), changed states are noted, a
   * removed server's connections are closed for good.
   */
  synchronized List<CompletableFuture<Void>> follow(MetaView v) {
    List<CompletableFuture<Void>> connecting = new ArrayList<>();
    if (v.version() <= version) {
      return connecting;
    }
    int max = 0;
    for (Member m : v.servers()) {
      max = Math.max(max, m.slot());
    }
    ServerState[] next = Arrays.copyOf(bySlot, Math.max(bySlot.length, max + 1));
    for (Member m : v.servers()) {
      ServerState s = next[m.slot()];
      if (s != null && !s.id().equals(m.id())) {
        if (m.status() == ServerStatus.REMOVED) {
          continue; // an older holder of a reused slot: the current one is listed too
        }
        retire(s);
        s = null;
      }
      if (s == null) {
        if (m.status() == ServerStatus.REMOVED) {
          continue;
        }
        s = new ServerState(m);
        s.connections = new ServerConnection[loops.length];
        for (int l = 0; l < loops.length; l++) {
          s.connections[l] = new ServerConnection(s, config);
        }
        next[m.slot()] = s;
        for (int l = 0; l < loops.length; l++) {
          connecting.add(s.connections[l].connect(loops[l]));
        }
        LOG.debug("server {} (slot {}) at {}", m.id(), m.slot(), m.address());
      } else if (s.status() != m.status()) {
        LOG.info("server {} (slot {}) is {}", m.address(), m.slot(), m.status());
        s.status(m.status());
        if (m.status() == ServerStatus.REMOVED) {
          retire(s);
        }
      }
    }
    List<ServerState> live = new ArrayList<>();
    for (ServerState s : next) {
      if (s != null && !s.removed()) {
        live.add(s);
      }
    }
    bySlot = next;
    members = live.toArray(new ServerState[0]);
    version = v.version();
    return connecting;
  }

  private static void retire(ServerState s) {
    s.status(ServerStatus.REMOVED);
    s.up(false);
    for (ServerConnection c : s.connections) {
      c.close();
    }
  }

  /**
   * The connection to server {@code slot} to use from this thread: on an event loop of this client
   * (where the NBD gateway runs its connections too), the one bound to that same loop, so that a
   * request and its reply never cross threads; elsewhere a fixed one per thread. A broken one is passed over.
   */
  ServerConnection connection(int slot) {
    ServerConnection[] cs = server(slot).connections;
    int pick = -1;
    for (int l = 0; l < loops.length; l++) {
      if (loops[l].inEventLoop()) {
        pick = l;
        break;
      }
    }
    if (pick < 0) {
      pick = (int) (Thread.currentThread().getId() % cs.length);
    }
    if (cs[pick].active()) {
      return cs[pick];
    }
    for (ServerConnection c : cs) {
      if (c.active()) {
        return c;
      }
    }
    return cs[pick];
  }

  /** Bytes of requests queued for servers that do not take them now. */
  long queuedBytes() {
    long n = 0;
    for (ServerState s : members) {
      ServerConnection[] cs = s.connections;
      for (int i = 0; cs != null && i < cs.length; i++) {
        n += cs[i].queuedBytes();
      }
    }
    return n;
  }

  /** Closes every connection to every server, for good. */
  void close() {
    for (ServerState s : bySlot) {
      if (s != null) {
        for (ServerConnection c : s.connections) {
          c.close();
        }
      }
    }
  }
}
