package io.vmd.client;

import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.FastThreadLocal;
import io.vmd.common.Transports;
import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaException;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.NamespaceRecord;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry point to a VMD cluster, shaped as Ratis's {@code RaftClient}: {@link #attach} opens a
 * namespace for page I/O, {@link #namespaces()} administers namespaces and their ownership,
 * {@link #cluster()} the servers. It learns the servers from the control plane and follows changes
 * (servers that join are connected and used without a restart), connects to every server and renews
 * the leases of the namespaces it owns. Asynchronous underneath; the admin methods block.
 */
public final class VmdClient implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VmdClient.class);
  private static final long MEMBERSHIP_POLL_MILLIS = 500;
  /** How often namespaces attached while a server was silent look for it again. */
  private static final long LATE_SERVER_POLL_MILLIS = 500;

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
  private final MetaClient meta;
  private final String ownerId;
  private final PlacementPolicy placement;
  private final Membership membership;
  private final ServerCalls calls;
  private final ClusterAdmin cluster = new ClusterAdmin(this);
  private final NamespaceAdmin namespaces = new NamespaceAdmin(this);
  private final ScheduledExecutorService admin = daemonScheduler("vmd-client-control");
  /** Lease renewals on a thread of their own: a slow membership poll or late server never delays them. */
  private final ScheduledExecutorService leases = daemonScheduler("vmd-client-leases");
  private final Set<Namespace> attached = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final LongAdder sealFailures = new LongAdder();

  private VmdClient(ClientConfig config, String ownerName, boolean stable) {
    this.config = config;
    this.group = Transports.group(config.ioThreads(), "vmd-client");
    List<EventLoop> loops = new ArrayList<>();
    group.forEach(e -> loops.add((EventLoop) e));
    this.membership = new Membership(config, loops.toArray(new EventLoop[0]));
    this.calls = new ServerCalls(membership);
    this.meta = MetaClient.connect(config.cluster(), config.meta(), config.requestTimeout().plusSeconds(5), config.tls());
    // In a secure cluster the control plane lets a gateway act only under owner ids that start with its
    // certificate's name and '/'.
    String prefix = config.tls() == null ? "" : config.tls().identity().name() + "/";
    this.ownerId = prefix + ownerName + (stable ? "" : "-" + Long.toHexString(new SecureRandom().nextLong() >>> 16));
    this.placement = PlacementPolicy.named(config.placement());
  }

  private static ScheduledExecutorService daemonScheduler(String name) {
    return Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    });
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
    return connect(new VmdClient(config, ownerPrefix, false));
  }

  /**
   * As {@link #connect(ClientConfig)}, owning namespaces as exactly {@code ownerId} (after the
   * certificate's name and '/'), the same in every life of the process: restarted, it takes back at
   * once the namespaces its previous life held, without waiting out their leases. Each such claim moves
   * the epoch on, so whatever the previous life still sends is refused. Two live clients with one owner
   * id would take namespaces from each other; give each gateway its own.
   */
  public static VmdClient connectAs(ClientConfig config, String ownerId) throws VmdException {
    return connect(new VmdClient(config, ownerId, true));
  }

  private static VmdClient connect(VmdClient c) throws VmdException {
    ClientConfig config = c.config;
    try {
      List<CompletableFuture<Void>> connecting = c.membership.follow(c.meta.view());
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
    c.admin.scheduleWithFixedDelay(c::resolveLate, LATE_SERVER_POLL_MILLIS, LATE_SERVER_POLL_MILLIS,
        TimeUnit.MILLISECONDS);
    return c;
  }

  public ClientConfig config() {
    return config;
  }

  /** Sealed page copies a server returned that failed their tag or were older than the newest known. */
  public long sealFailureCount() {
    return sealFailures.sum();
  }

  LongAdder sealFailures() {
    return sealFailures;
  }

  /** The id this client owns namespaces under (shown by {@code vmd ns list}; a hand-off names it). */
  public String ownerId() {
    return ownerId;
  }

  /** The servers: members, state, memory, drain (as Ratis's {@code admin()}). */
  public ClusterAdmin cluster() {
    return cluster;
  }

  /** Namespaces: create, list, delete, ownership, hand-off and fence. */
  public NamespaceAdmin namespaces() {
    return namespaces;
  }

  /** The event loops this client's connections run on; a gateway serving its clients on them avoids thread hops. */
  public EventLoopGroup eventLoopGroup() {
    return group;
  }

  /** Bytes of requests queued for servers that do not take them now (see {@link ClientConfig#maxQueuedBytes}). */
  public long queuedBytes() {
    return membership.queuedBytes();
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
   * Attaches a namespace: takes ownership as {@code access} says and rebuilds its location table from
   * the servers (see {@link Attach}); pages that only a server still silent could hold read as errors
   * until it answers, never as zeros.
   */
  public Namespace attach(String name, Access access) throws VmdException {
    Namespace ns = new Attach(this, name, access).run();
    attached.add(ns);
    return ns;
  }

  void detached(Namespace ns) {
    attached.remove(ns);
  }

  /** Releases this client's own handles of the namespace (before it deletes it: what it owns it may delete). */
  void releaseHandles(String name) {
    for (Namespace ns : attached) {
      if (ns.name().equals(name)) {
        ns.release();
      }
    }
  }

  /**
   * Makes a server that came back (restarted, or one that missed changes) catch up with the namespace
   * and returns the pages it holds of it, as a bitmap.
   */
  long[] rejoin(int server, NamespaceRecord ns) throws VmdException {
    long[] held = new long[(int) ((ns.pages() + 63) >>> 6)];
    // One server's replies arrive in order on its connection's event loop: no lock needed.
    await(calls.catchUpAndList(server, ns, (s, page, stamp) -> {
      if (page >= 0 && page < ns.pages()) {
        held[(int) (page >>> 6)] |= 1L << page;
      }
    }));
    return held;
  }

  // ---------------------------------------------------------------- internals shared by the client's parts

  MetaClient meta() {
    return meta;
  }

  Membership membership() {
    return membership;
  }

  ServerCalls calls() {
    return calls;
  }

  PlacementPolicy placement() {
    return placement;
  }

  /** The server with this slot, or null. */
  ServerState server(int slot) {
    return membership.server(slot);
  }

  String describe(int slot) {
    return membership.describe(slot);
  }

  private static final FastThreadLocal<int[]> PLACEMENT_SCRATCH = new FastThreadLocal<>();

  /** A per-thread array for the placement policy's answer: placing a page run allocates nothing. */
  int[] placementScratch(int replicas) {
    int[] a = PLACEMENT_SCRATCH.get();
    if (a == null || a.length < replicas) {
      a = new int[Math.max(replicas, 4)];
      PLACEMENT_SCRATCH.set(a);
    }
    return a;
  }

  MetaView view() throws VmdException {
    try {
      return meta.view();
    } catch (MetaException e) {
      throw VmdException.of(e);
    }
  }

  boolean ownedByAnother(NamespaceMeta n, long nowMillis) {
    return n.ownedAt(nowMillis) && !n.owner().equals(ownerId);
  }

  /** Brings the server list in line with the control plane now (e.g. before an attach). */
  void refreshMembership() throws VmdException {
    membership.follow(view());
  }

  private void pollMembership() {
    try {
      MetaView v = meta.viewIfChanged(membership.version(), false);
      if (v != null) {
        membership.follow(v);
      }
    } catch (MetaException | RuntimeException e) {
      LOG.debug("control plane: {}", e.getMessage());
    }
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

  // ---------------------------------------------------------------- blocking helpers

  /** Waits for {@code f} as long as one operation may take (see {@link ClientConfig#operationTimeoutMillis}). */
  <T> T await(CompletableFuture<T> f) throws VmdException {
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
    } catch (TimeoutException e) {
      throw new VmdException(ErrorCode.UNAVAILABLE, "timed out after " + millis + " ms");
    } catch (Exception e) {
      throw VmdException.from(e);
    }
  }

  static void sleep(long millis) throws VmdException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted");
    }
  }

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
    membership.close();
    meta.close();
    Transports.shutdown(group, 1, "vmd client");
  }
}
