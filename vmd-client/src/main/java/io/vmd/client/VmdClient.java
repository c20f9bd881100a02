package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoopGroup;
import io.vmd.common.Transports;
import io.vmd.meta.Member;
import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaException;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry point to a VMD cluster. It learns the servers and the namespaces from the control plane
 * (and follows changes: servers that join are connected and used without a restart), connects to
 * every server, tracks their free memory, administers namespaces through the control plane and
 * attaches them for page I/O. Asynchronous underneath; the admin methods block.
 */
public final class VmdClient implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VmdClient.class);
  private static final long MEMBERSHIP_POLL_MILLIS = 500;

  /** How a namespace is attached. */
  public enum Access {
    /** Read only; never changes ownership. */
    READ,
    /** Write if nobody else holds a live lease on it (then this client owns it), else read only. */
    CLAIM,
    /** Take it over for writing whoever holds it: an explicit hand-off; the earlier owner is fenced. */
    TAKE_OVER
  }

  private final ClientConfig config;
  private final EventLoopGroup group;
  private final io.netty.channel.EventLoop[] loops;
  private final MetaClient meta;
  private final String ownerId;
  private final PlacementPolicy placement;
  private final ScheduledExecutorService admin = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-client-control");
    t.setDaemon(true);
    return t;
  });
  /** Lease renewals on a thread of their own: a slow membership poll or late server never delays them. */
  private final ScheduledExecutorService leases = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-client-leases");
    t.setDaemon(true);
    return t;
  });
  /** Servers by slot (index = slot; null where none); replaced whole when membership changes. */
  private volatile ServerState[] bySlot = new ServerState[1];
  /** Every known server that is not removed, for placement and scans. */
  private volatile ServerState[] members = new ServerState[0];
  private volatile long membershipVersion = -1;
  private final Set<Namespace> attached = ConcurrentHashMap.newKeySet();

  private VmdClient(ClientConfig config, String ownerPrefix) {
    this.config = config;
    this.group = Transports.group(config.ioThreads(), "vmd-client");
    List<io.netty.channel.EventLoop> all = new ArrayList<>();
    group.forEach(e -> all.add((io.netty.channel.EventLoop) e));
    this.loops = all.toArray(new io.netty.channel.EventLoop[0]);
    this.meta = MetaClient.connect(config.cluster(), config.meta(), config.requestTimeout().plusSeconds(5));
    this.ownerId = ownerPrefix + "-" + Long.toHexString(new java.security.SecureRandom().nextLong() >>> 16);
    this.placement = PlacementPolicy.named(config.placement());
  }

  /**
   * Joins the control plane, learns the servers and connects to each, waiting for their HELLO.
   * Servers that cannot be reached are marked down (and tried again in the background); it fails only
   * when the control plane does not answer, or a server belongs to another cluster or protocol version.
   */
  public static VmdClient connect(ClientConfig config) throws VmdException {
    return connect(config, "client");
  }

  /** As {@link #connect(ClientConfig)}; {@code ownerPrefix} starts this client's owner id (e.g. "gateway"). */
  public static VmdClient connect(ClientConfig config, String ownerPrefix) throws VmdException {
    VmdClient c = new VmdClient(config, ownerPrefix);
    try {
      List<CompletableFuture<Void>> connecting = c.follow(c.meta.view());
      for (CompletableFuture<Void> f : connecting) {
        try {
          await(f, config.connectTimeout().toMillis() + 1000);
        } catch (VmdException e) {
          if (e.code() == ErrorCode.WRONG_CLUSTER || e.code() == ErrorCode.VERSION
              || e.code() == ErrorCode.UNAUTHORIZED) {
            throw e;
          }
          LOG.warn("{}", e.getMessage());
        }
      }
    } catch (MetaException e) {
      c.close();
      throw VmdException.of(e);
    } catch (VmdException | RuntimeException e) {
      c.close();
      throw e;
    }
    c.admin.scheduleWithFixedDelay(c::pollMembership, MEMBERSHIP_POLL_MILLIS, MEMBERSHIP_POLL_MILLIS,
        TimeUnit.MILLISECONDS);
    long renew = Math.max(100, config.lease().toMillis() / 3);
    c.leases.scheduleWithFixedDelay(c::renewLeases, renew, renew, TimeUnit.MILLISECONDS);
    c.admin.scheduleWithFixedDelay(c::resolveLate, 500, 500, TimeUnit.MILLISECONDS);
    return c;
  }

  public ClientConfig config() {
    return config;
  }

  /** The id this client owns namespaces under (shown by {@code vmd ns list}; a hand-off names it). */
  public String ownerId() {
    return ownerId;
  }

  MetaClient meta() {
    return meta;
  }

  /** Every known server that is not removed from the cluster, by slot order (a snapshot). */
  public List<ServerState> servers() {
    return List.of(members);
  }

  /** Bytes of requests queued for servers that do not take them now (see {@link ClientConfig#maxQueuedBytes}). */
  public long queuedBytes() {
    long n = 0;
    for (ServerState s : members) {
      ServerConnection[] cs = s.connections;
      for (int i = 0; cs != null && i < cs.length; i++) {
        n += cs[i].queuedBytes();
      }
    }
    return n;
  }

  /** The same, as the live array placement reads: not to be changed. */
  ServerState[] serverArray() {
    return members;
  }

  /** The server with this slot, or null when there is none (or it is unknown yet). */
  public ServerState server(int slot) {
    ServerState[] a = bySlot;
    return slot > 0 && slot < a.length ? a[slot] : null;
  }

  /**
   * Whether a namespace's pages may sit on servers that will not keep them: one removed from the
   * cluster since this client learned of it, or one draining.
   */
  public boolean lostServers() {
    for (ServerState s : bySlot) {
      if (s != null && (s.removed() || s.status() == ServerStatus.DRAINING)) {
        return true;
      }
    }
    return false;
  }

  PlacementPolicy placement() {
    return placement;
  }

  // ---------------------------------------------------------------- membership

  private void pollMembership() {
    try {
      MetaView v = meta.viewIfChanged(membershipVersion, false);
      if (v != null) {
        follow(v);
      }
    } catch (MetaException | RuntimeException e) {
      LOG.debug("control plane: {}", e.getMessage());
    }
  }

  /** Brings the server list in line with the control plane now (e.g. before an attach). */
  void refreshMembership() throws VmdException {
    follow(view());
  }

  /**
   * Takes the view's membership: new servers are connected (the futures), changed states are noted, a
   * removed server's connections are closed for good.
   */
  private synchronized List<CompletableFuture<Void>> follow(MetaView v) {
    List<CompletableFuture<Void>> connecting = new ArrayList<>();
    if (v.version() <= membershipVersion) {
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
    membershipVersion = v.version();
    return connecting;
  }

  private static void retire(ServerState s) {
    s.status(ServerStatus.REMOVED);
    s.up(false);
    for (ServerConnection c : s.connections) {
      c.close();
    }
  }

  private static final io.netty.util.concurrent.FastThreadLocal<int[]> PLACEMENT_SCRATCH =
      new io.netty.util.concurrent.FastThreadLocal<>();

  /** A per-thread array for the placement policy's answer: placing a page run allocates nothing. */
  int[] placementScratch(int replicas) {
    int[] a = PLACEMENT_SCRATCH.get();
    if (a == null || a.length < replicas) {
      a = new int[Math.max(replicas, 4)];
      PLACEMENT_SCRATCH.set(a);
    }
    return a;
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

  /** The event loops this client's connections run on; a gateway serving its clients on them avoids thread hops. */
  public EventLoopGroup eventLoopGroup() {
    return group;
  }

  String describe(int slot) {
    ServerState s = server(slot);
    return s == null ? "server slot " + slot : s.address().toString();
  }

  VmdException error(ByteBuf f, int server) {
    return new VmdException(ErrorCode.of(Frame.status(f)), "server " + describe(server) + ": " + Codec.errorMessage(f));
  }

  // ---------------------------------------------------------------- control requests

  /** Sends a one-reply control request to one server and parses the reply. */
  <T> CompletableFuture<T> call(int server, byte op, int ns, long epoch, Consumer<ByteBuf> body,
      Function<ByteBuf, T> parse) {
    return call(server, op, ns, epoch, body, parse, 0, 0);
  }

  /** As above, for a request about pages [firstPage, firstPage + count). */
  <T> CompletableFuture<T> call(int server, byte op, int ns, long epoch, Consumer<ByteBuf> body,
      Function<ByteBuf, T> parse, long firstPage, int count) {
    return call(server, op, 0, ns, epoch, body, parse, firstPage, count);
  }

  /** As above, with request flags. */
  <T> CompletableFuture<T> call(int server, byte op, int flags, int ns, long epoch, Consumer<ByteBuf> body,
      Function<ByteBuf, T> parse, long firstPage, int count) {
    CompletableFuture<T> result = new CompletableFuture<>();
    if (server(server) == null) {
      result.completeExceptionally(new VmdException(ErrorCode.UNAVAILABLE, "no server with slot " + server));
      return result;
    }
    ServerConnection conn = connection(server);
    long id = conn.nextId();
    ByteBuf frame = Codec.frame(io.netty.buffer.ByteBufAllocator.DEFAULT, op, flags, 0, id, ns, epoch, firstPage, count,
        body);
    conn.send(id, frame, new Pending() {
      @Override
      void onReply(ByteBuf f) {
        if (Frame.status(f) != 0) {
          result.completeExceptionally(error(f, server));
          return;
        }
        try {
          result.complete(parse.apply(f));
        } catch (RuntimeException e) {
          result.completeExceptionally(new VmdException(ErrorCode.BAD_REQUEST,
              "unreadable " + Op.name(op) + " reply from " + describe(server) + ": " + e.getMessage()));
        }
      }

      @Override
      void onFailure(VmdException e) {
        result.completeExceptionally(e);
      }
    });
    return result;
  }

  private static ByteBuf payload(ByteBuf f) {
    return Frame.skipHeader(f.duplicate());
  }

  /** Every server the control plane knows, removed ones included, linearizable. */
  public List<Member> members() throws VmdException {
    return view().servers();
  }

  /**
   * Changes a server's state in the control plane: ACTIVE (admit it to placement), DRAINING (its pages
   * move off it), REMOVED (gone for good). Removing one that still holds pages, or cannot be asked, is
   * refused unless {@code force}: its copies are then declared lost.
   */
  public Member setServerStatus(int slot, ServerStatus status, boolean force) throws VmdException {
    if (status == ServerStatus.REMOVED && !force) {
      ServerState s = server(slot);
      if (s == null || !s.up()) {
        throw new VmdException(ErrorCode.UNAVAILABLE, "server slot " + slot + " is down: it cannot say it holds"
            + " nothing; drain it while it is up, or remove it with --force (its pages are then lost)");
      }
      long pages = await(call(slot, Op.AVAILABILITY, 0, 0, null, f -> Codec.readAvailability(payload(f)))).pages();
      if (pages > 0) {
        throw new VmdException(ErrorCode.EXISTS, "server " + s.address() + " still holds " + pages
            + " pages: drain it first (vmd cluster drain), or remove it with --force (its pages are then lost)");
      }
    }
    try {
      Member m = meta.setStatus(slot, status);
      refreshMembership();
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
    setServerStatus(slot, ServerStatus.DRAINING, false);
    long deadline = System.nanoTime() + timeout.toNanos();
    try (Repairer repairer = new Repairer(this, Duration.ZERO, 16_384)) {
      return drain(slot, deadline, repairer);
    }
  }

  private long drain(int slot, long deadline, Repairer repairer) throws VmdException {
    while (true) {
      long held = await(call(slot, Op.AVAILABILITY, 0, 0, null, f -> Codec.readAvailability(payload(f)))).pages();
      if (held == 0 || System.nanoTime() - deadline > 0) {
        return held;
      }
      MetaView v = view();
      for (NamespaceMeta n : v.namespaces()) {
        if (!n.holds(slot) || ownedByAnother(n, v.nowMillis())) {
          continue;
        }
        Namespace ns = attach(n.name(), Access.CLAIM);
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
      sleep(500);
    }
  }

  // ---------------------------------------------------------------- namespaces (control plane)

  /** Every namespace as the control plane holds it (owner, epoch, server set), linearizable. */
  public List<NamespaceMeta> namespaces() throws VmdException {
    return view().namespaces();
  }

  /** Every namespace, by id. */
  public List<NamespaceRecord> listNamespaces() throws VmdException {
    List<NamespaceRecord> out = new ArrayList<>();
    for (NamespaceMeta n : namespaces()) {
      out.add(n.record());
    }
    return out;
  }

  public NamespaceMeta namespaceMeta(String name) throws VmdException {
    for (NamespaceMeta n : namespaces()) {
      if (n.name().equals(name)) {
        return n;
      }
    }
    throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
  }

  /**
   * A namespace as the control plane holds it now, and whether another client or gateway holds a live
   * lease on it (so that a claim from this client would get it read-only): one linearizable read.
   */
  public record Ownership(NamespaceMeta namespace, boolean ownedByAnother) {}

  public Ownership ownership(String name) throws VmdException {
    MetaView v = view();
    NamespaceMeta n = v.namespace(name);
    if (n == null) {
      throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    return new Ownership(n, ownedByAnother(n, v.nowMillis()));
  }

  private boolean ownedByAnother(NamespaceMeta n, long nowMillis) {
    return n.ownedAt(nowMillis) && !n.owner().equals(ownerId);
  }

  private MetaView view() throws VmdException {
    try {
      return meta.view();
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  public NamespaceRecord namespace(String name) throws VmdException {
    return namespaceMeta(name).record();
  }

  /** Creates the namespace in the control plane, with an id never used before; servers learn it from there. */
  public NamespaceRecord createNamespace(String name, long sizeBytes, int replicas) throws VmdException {
    if (!NamespaceRecord.validName(name)) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace name '" + name
          + "': use 1-64 characters of letters, digits, '.', '_' or '-'");
    }
    if (sizeBytes < Pages.PAGE_SIZE || sizeBytes % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace size must be a positive multiple of 4096 bytes");
    }
    int serving = 0;
    for (ServerState s : members) {
      serving += s.status() == ServerStatus.ACTIVE ? 1 : 0;
    }
    if (replicas < 1 || replicas > Math.max(1, serving) || replicas > 8) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "replica count " + replicas + " needs between 1 and "
          + Math.min(8, Math.max(1, serving)) + " (the cluster has " + serving + " active servers)");
    }
    try {
      NamespaceMeta n = meta.createNamespace(name, sizeBytes, replicas);
      catchUp(servers(), n.id(), 0);
      return n.record();
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /**
   * Makes each live server of {@code slots} catch up with the control plane on namespace {@code id}
   * now (NS_ATTACH), waiting for each at most the request timeout: after a create, so a first write does
   * not meet a server that has not heard of it; after a hand-off, so the earlier writer is refused.
   */
  private void catchUp(Iterable<ServerState> servers, int id, long epoch) {
    List<CompletableFuture<Long>> asks = new ArrayList<>();
    for (ServerState s : servers) {
      if (s != null && s.up()) {
        asks.add(call(s.index(), Op.NS_ATTACH, id, epoch, null, Frame::epoch));
      }
    }
    for (CompletableFuture<Long> a : asks) {
      try {
        await(a, config.requestTimeout().toMillis());
      } catch (VmdException e) {
        LOG.warn("{}", e.getMessage());
      }
    }
  }

  /**
   * Deletes the namespace in the control plane; every server drops its pages when it sees that (a
   * server that is down now does when it comes back). This client's own handles of it are released
   * first; a namespace that another owner holds with a live lease is refused unless {@code force}.
   */
  public void deleteNamespace(String name, boolean force) throws VmdException {
    // This client's own handles go first: what it owns it may delete.
    for (Namespace ns : attached) {
      if (ns.name().equals(name)) {
        ns.release();
      }
    }
    try {
      meta.deleteNamespace(name, force);
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  public void deleteNamespace(String name) throws VmdException {
    deleteNamespace(name, false);
  }

  /** Pages and bytes of the namespace on each server. */
  public List<ServerUsage> namespaceUsage(String name) throws VmdException {
    return namespaceUsage(namespace(name));
  }

  /** Pages and bytes of the namespace on each server that is not removed. */
  public List<ServerUsage> namespaceUsage(NamespaceRecord ns) throws VmdException {
    List<ServerUsage> out = new ArrayList<>();
    for (ServerState s : members) {
      long pages = 0;
      boolean up = s.up();
      if (up) {
        try {
          pages = await(call(s.index(), Op.NS_INFO, ns.id(), 0, null, f -> {
            ByteBuf p = payload(f);
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

  /** Asks every live server for its availability now, rather than waiting for the next push. */
  public List<ServerState> refreshAvailability() throws VmdException {
    for (ServerState s : members) {
      if (s.up()) {
        try {
          s.report(await(call(s.index(), Op.AVAILABILITY, 0, 0, null, f -> Codec.readAvailability(payload(f)))));
        } catch (VmdException e) {
          LOG.warn("{}", e.getMessage());
        }
      }
    }
    return servers();
  }

  /**
   * Hands the namespace to {@code owner} (another client or gateway, by its owner id): its epoch moves
   * on, and the servers refuse the earlier owner's writes from then on.
   */
  public NamespaceMeta handOff(String name, String owner) throws VmdException {
    try {
      MetaClient.Claim c = meta.claim(name, owner, config.lease(), true, -1);
      NamespaceMeta n = c.namespace();
      List<ServerState> set = new ArrayList<>();
      for (int slot : n.servers()) {
        set.add(server(slot));
      }
      catchUp(set, n.id(), n.epoch());
      return n;
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  /**
   * Takes the namespace from whoever writes it and leaves it without an owner: its epoch moves on
   * (the servers are told at once), so the earlier owner's writes are refused from now on, and the
   * next gateway to write it (one standing by for it, such as a migration's destination) claims it.
   */
  public NamespaceMeta fence(String name) throws VmdException {
    NamespaceMeta n = handOff(name, ownerId);
    try {
      return meta.release(n.id(), ownerId, n.epoch());
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  // ---------------------------------------------------------------- attach

  /**
   * As {@link #attach(String, Access)}: {@code forWriting} takes the namespace over (fencing whoever
   * wrote it before), else it is read only.
   */
  public Namespace attach(String name, boolean forWriting) throws VmdException {
    return attach(name, forWriting ? Access.TAKE_OVER : Access.READ);
  }

  /**
   * Attaches a namespace: takes ownership as {@code access} says, then rebuilds its location table
   * from what every server of its server set holds (so any host can open a namespace another host
   * wrote), keeping of each page only its newest copies. It waits for every server of the set (up to
   * {@link ClientConfig#attachWait}); pages that only a server still silent could hold read as errors
   * until it answers, never as zeros. A writer deletes the stale and surplus copies it found.
   */
  public Namespace attach(String name, Access access) throws VmdException {
    NamespaceMeta n;
    boolean writable;
    try {
      if (access == Access.READ) {
        n = meta.view().namespace(name);
        if (n == null) {
          throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
        }
        writable = false;
      } else {
        MetaClient.Claim c = meta.claim(name, ownerId, config.lease(), access == Access.TAKE_OVER, -1);
        n = c.namespace();
        writable = c.grantedTo(ownerId);
      }
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
    refreshMembership();
    NamespaceRecord ns = n.record();
    LocationTable table = new LocationTable(ns.pages(), ns.replicas());
    NewestCopies copies = new NewestCopies(table);
    // The servers that may hold pages of it; a removed one's copies are gone.
    List<Integer> set = new ArrayList<>();
    for (int slot : n.servers()) {
      ServerState s = server(slot);
      if (s != null && !s.removed()) {
        set.add(slot);
      }
    }
    long deadline = System.nanoTime() + config.attachWait().toNanos();
    List<Integer> listed = new ArrayList<>();
    List<Integer> late = new ArrayList<>(set);
    while (!late.isEmpty()) {
      List<Integer> asking = new ArrayList<>();
      List<CompletableFuture<Void>> lists = new ArrayList<>();
      for (int slot : late) {
        if (server(slot).up()) {
          asking.add(slot);
          lists.add(catchUpAndList(slot, ns, copies::offer));
        }
      }
      for (int i = 0; i < lists.size(); i++) {
        try {
          await(lists.get(i), Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
          listed.add(asking.get(i));
        } catch (VmdException e) {
          LOG.warn("namespace '{}': server {} did not list its pages: {}", name, describe(asking.get(i)), e.getMessage());
        }
      }
      late.removeAll(listed);
      if (late.isEmpty() || System.nanoTime() - deadline > 0) {
        break;
      }
      sleep(100);
    }
    if (!late.isEmpty()) {
      LOG.warn("namespace '{}': servers {} have not answered in {} ms; pages only they could hold read as "
          + "errors until they do", name, late.stream().map(this::describe).toList(), config.attachWait().toMillis());
    }
    if (copies.discardedTotal() > 0) {
      LOG.info("namespace '{}': {} stale or surplus page copies found{}", ns.name(), copies.discardedTotal(),
          writable ? "; deleting them" : "");
    }
    // A new writer stamps above every copy it saw, and above any older writer's (lower epoch).
    long firstStamp = Math.max(Frame.firstStamp(ns.epoch()), copies.maxStamp() + 1);
    Namespace attached = new Namespace(this, n, table, writable, firstStamp,
        late.isEmpty() ? null : new Namespace.Late(copies, late));
    if (writable) {
      List<CompletableFuture<Void>> deletes = new ArrayList<>();
      for (int s : listed) {
        deletes.add(attached.deleteCopies(s, copies.discarded(s)));
      }
      await(CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0])));
      if (late.isEmpty()) {
        shrinkServerSet(attached, n, listed, table);
      }
    }
    this.attached.add(attached);
    return attached;
  }

  /**
   * The owner, having heard from every server of the set, takes out of it those that hold nothing of
   * the namespace (and removed ones): later attaches need not wait for them. No other writer can place a
   * page meanwhile (this one owns it), and this one names a server again before it places a page there.
   */
  private void shrinkServerSet(Namespace ns, NamespaceMeta n, List<Integer> listed, LocationTable table) {
    java.util.Map<Integer, Long> held = table.copiesPerServer();
    List<Integer> idle = new ArrayList<>();
    for (int slot : n.servers()) {
      boolean gone = server(slot) == null || server(slot).removed();
      if (gone || (listed.contains(slot) && !held.containsKey(slot))) {
        idle.add(slot);
      }
    }
    if (idle.isEmpty()) {
      return;
    }
    try {
      NamespaceMeta after = meta.removeServers(n.id(), ownerId, n.epoch(), idle.stream().mapToInt(Integer::intValue).toArray());
      ns.serverSet = after.servers();
      LOG.info("namespace '{}': servers {} hold nothing of it; its server set is now {}", n.name(), idle,
          Arrays.toString(after.servers()));
    } catch (MetaException e) {
      LOG.debug("namespace '{}': server set not shrunk: {}", n.name(), e.getMessage());
    }
  }

  private static void sleep(long millis) throws VmdException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted");
    }
  }

  /** Makes the server catch up with the control plane on the namespace, then streams what it holds. */
  CompletableFuture<Void> catchUpAndList(int slot, NamespaceRecord ns, ListSink sink) {
    return call(slot, Op.NS_ATTACH, ns.id(), ns.epoch(), null, f -> (Void) null)
        .thenCompose(v -> list(slot, ns, sink));
  }

  void detached(Namespace ns) {
    attached.remove(ns);
  }

  /** One renewal for every namespace this client owns; a handle whose namespace was taken is fenced. */
  private void renewLeases() {
    boolean owns = false;
    for (Namespace ns : attached) {
      owns |= ns.writable();
    }
    if (!owns) {
      return;
    }
    meta.renewAsync(ownerId, config.lease()).whenComplete((held, e) -> {
      if (e != null) {
        LOG.debug("lease renewal: {}", e.toString());
        return;
      }
      for (Namespace ns : attached) {
        Long epoch = held.get(ns.record().id());
        if (ns.writable() && (epoch == null || epoch != ns.epoch())) {
          LOG.warn("namespace '{}' was taken over by another owner; this handle (epoch {}) writes no more",
              ns.name(), ns.epoch());
          ns.fence();
        }
      }
    });
  }

  private void resolveLate() {
    for (Namespace ns : attached) {
      try {
        ns.resolveLate();
      } catch (RuntimeException e) {
        LOG.warn("namespace '{}': {}", ns.name(), e.toString());
      }
    }
  }

  /**
   * Makes a server that came back (restarted, or one that missed changes) catch up with the namespace
   * and returns the pages it holds of it, as a bitmap.
   */
  public long[] rejoin(int server, NamespaceRecord ns) throws VmdException {
    long[] held = new long[(int) ((ns.pages() + 63) >>> 6)];
    // One server's replies arrive in order on its connection's event loop: no lock needed.
    await(catchUpAndList(server, ns, (s, page, stamp) -> {
      if (page >= 0 && page < ns.pages()) {
        held[(int) (page >>> 6)] |= 1L << page;
      }
    }));
    return held;
  }

  /** Receives the entries of a LIST. */
  @FunctionalInterface
  interface ListSink {
    void entry(int server, long page, long stamp);
  }

  /** Streams the pages {@code server} holds of the namespace, with their stamps, into {@code sink}. */
  CompletableFuture<Void> list(int server, NamespaceRecord ns, ListSink sink) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    ServerConnection conn = connection(server);
    long id = conn.nextId();
    ByteBuf frame = Codec.frame(io.netty.buffer.ByteBufAllocator.DEFAULT, Op.LIST, 0, 0, id, ns.id(), 0, 0, 0, null);
    conn.send(id, frame, new Pending() {
      @Override
      boolean done(ByteBuf f) {
        return !Frame.hasMore(f);
      }

      @Override
      void onReply(ByteBuf f) {
        if (Frame.status(f) != 0) {
          done.completeExceptionally(error(f, server));
          return;
        }
        int n = Frame.pageCount(f);
        int at = Frame.payloadIndex(f);
        for (int i = 0; i < n; i++, at += Frame.LIST_ENTRY) {
          sink.entry(server, f.getLong(at), f.getLong(at + 8));
        }
        if (!Frame.hasMore(f)) {
          done.complete(null);
        }
      }

      @Override
      void onFailure(VmdException e) {
        done.completeExceptionally(e);
      }
    });
    return done;
  }

  // ---------------------------------------------------------------- blocking helpers

  /** Waits for {@code f} as long as one operation may take (see {@link ClientConfig#operationTimeoutMillis}). */
  private <T> T await(CompletableFuture<T> f) throws VmdException {
    return await(f, config.operationTimeoutMillis());
  }

  /**
   * Waits for {@code f} at most {@code millis}; a failure comes out as the {@link VmdException} that
   * caused it, the deadline as UNAVAILABLE. Every wait has one: a request whose reply never comes must
   * not hold its caller forever.
   */
  public static <T> T await(CompletableFuture<T> f, long millis) throws VmdException {
    try {
      return f.get(millis, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted");
    } catch (java.util.concurrent.TimeoutException e) {
      throw new VmdException(ErrorCode.UNAVAILABLE, "timed out after " + millis + " ms");
    } catch (Exception e) {
      throw VmdException.from(e);
    }
  }

  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * Gives up the namespaces this client owns (so another may take them at once), closes every
   * connection and the event loops; a second call does nothing.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    admin.shutdownNow();
    leases.shutdownNow();
    for (Namespace ns : attached) {
      ns.release();
    }
    for (ServerState s : bySlot) {
      if (s != null) {
        for (ServerConnection c : s.connections) {
          c.close();
        }
      }
    }
    meta.close();
    io.vmd.common.Transports.shutdown(group, 1, "vmd client");
  }
}
