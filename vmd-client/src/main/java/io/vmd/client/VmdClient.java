package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoopGroup;
import io.vmd.common.Transports;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry point to a VMD cluster: connects to every server, tracks their free memory, administers
 * namespaces and attaches them for page I/O. Asynchronous underneath; the *Sync and admin methods
 * block for convenience.
 */
public final class VmdClient implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VmdClient.class);

  private final ClientConfig config;
  private final EventLoopGroup group;
  private final io.netty.channel.EventLoop[] loops;
  private final ServerState[] servers;
  /** [server][event loop]: one connection to each server per event loop. */
  private final ServerConnection[][] connections;
  private final PlacementPolicy placement;

  private VmdClient(ClientConfig config) {
    this.config = config;
    this.group = Transports.group(config.ioThreads(), "vmd-client");
    List<io.netty.channel.EventLoop> all = new ArrayList<>();
    group.forEach(e -> all.add((io.netty.channel.EventLoop) e));
    this.loops = all.toArray(new io.netty.channel.EventLoop[0]);
    int n = config.servers().size();
    this.servers = new ServerState[n];
    this.connections = new ServerConnection[n][loops.length];
    for (int i = 0; i < n; i++) {
      servers[i] = new ServerState(i, config.servers().get(i));
      for (int l = 0; l < loops.length; l++) {
        connections[i][l] = new ServerConnection(servers[i], config);
      }
    }
    this.placement = PlacementPolicy.named(config.placement());
  }

  /**
   * Connects to every server and waits for their HELLO. Servers that cannot be reached are marked
   * down; it fails only when none answers or one belongs to another cluster or protocol version.
   */
  public static VmdClient connect(ClientConfig config) throws VmdException {
    VmdClient c = new VmdClient(config);
    List<String> failures = new ArrayList<>();
    CompletableFuture<?>[][] all = new CompletableFuture<?>[c.connections.length][c.loops.length];
    for (int i = 0; i < all.length; i++) {
      for (int l = 0; l < c.loops.length; l++) {
        all[i][l] = c.connections[i][l].connect(c.loops[l]);
      }
    }
    int up = 0;
    for (int i = 0; i < all.length; i++) {
      try {
        for (CompletableFuture<?> f : all[i]) {
          await(f, config.connectTimeout().toMillis() + 1000);
        }
        up++;
      } catch (VmdException e) {
        if (e.code() == ErrorCode.WRONG_CLUSTER || e.code() == ErrorCode.VERSION || e.code() == ErrorCode.UNAUTHORIZED) {
          c.close();
          throw e;
        }
        failures.add(e.getMessage());
        LOG.warn("{}", e.getMessage());
      }
    }
    if (up == 0) {
      c.close();
      throw new VmdException(ErrorCode.UNAVAILABLE, "no server answered: " + String.join("; ", failures));
    }
    return c;
  }

  public ClientConfig config() {
    return config;
  }

  /** Every configured server with its state (index = position in the server list). */
  public ServerState[] servers() {
    return servers;
  }

  PlacementPolicy placement() {
    return placement;
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
   * The connection to {@code server} to use from this thread: on an event loop of this client (where
   * the NBD gateway runs its connections too), the one bound to that same loop, so that a request and
   * its reply never cross threads; elsewhere a fixed one per thread. A broken one is passed over.
   */
  ServerConnection connection(int server) {
    ServerConnection[] cs = connections[server];
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

  VmdException error(ByteBuf f, int server) {
    return new VmdException(ErrorCode.of(Frame.status(f)),
        "server " + servers[server].address() + ": " + Codec.errorMessage(f));
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
              "unreadable " + Op.name(op) + " reply from " + servers[server].address() + ": " + e.getMessage()));
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

  /** The namespace table of every server that is up, by server index. */
  private Map<Integer, List<NamespaceRecord>> tables() throws VmdException {
    Map<Integer, CompletableFuture<List<NamespaceRecord>>> futures = new TreeMap<>();
    for (ServerState s : servers) {
      if (s.up()) {
        futures.put(s.index(), call(s.index(), Op.NS_LIST, 0, 0, null, f -> Codec.readNamespaces(payload(f))));
      }
    }
    Map<Integer, List<NamespaceRecord>> out = new TreeMap<>();
    for (Map.Entry<Integer, CompletableFuture<List<NamespaceRecord>>> e : futures.entrySet()) {
      try {
        out.put(e.getKey(), await(e.getValue()));
      } catch (VmdException ex) {
        LOG.warn("{}", ex.getMessage());
      }
    }
    if (out.isEmpty()) {
      throw new VmdException(ErrorCode.UNAVAILABLE, "no server is up");
    }
    return out;
  }

  /** Every namespace any live server knows, by id (the newest epoch wins). */
  public List<NamespaceRecord> listNamespaces() throws VmdException {
    Map<Integer, NamespaceRecord> byId = new TreeMap<>();
    for (List<NamespaceRecord> table : tables().values()) {
      for (NamespaceRecord r : table) {
        byId.merge(r.id(), r, (a, b) -> a.epoch() >= b.epoch() ? a : b);
      }
    }
    return new ArrayList<>(byId.values());
  }

  public NamespaceRecord namespace(String name) throws VmdException {
    for (NamespaceRecord r : listNamespaces()) {
      if (r.name().equals(name)) {
        return r;
      }
    }
    throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
  }

  /** Creates the namespace on every live server with one cluster-wide id. */
  public NamespaceRecord createNamespace(String name, long sizeBytes, int replicas) throws VmdException {
    if (!NamespaceRecord.validName(name)) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace name '" + name
          + "': use 1-64 characters of letters, digits, '.', '_' or '-'");
    }
    if (sizeBytes < Pages.PAGE_SIZE || sizeBytes % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "namespace size must be a positive multiple of 4096 bytes");
    }
    if (replicas < 1 || replicas > servers.length) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "replica count " + replicas
          + " needs between 1 and " + servers.length + " servers");
    }
    int maxId = 0;
    for (NamespaceRecord r : listNamespaces()) {
      if (r.name().equals(name)) {
        throw new VmdException(ErrorCode.EXISTS, "namespace '" + name + "' exists");
      }
      maxId = Math.max(maxId, r.id());
    }
    NamespaceRecord ns = new NamespaceRecord(maxId + 1, name, sizeBytes, replicas, 1);
    List<CompletableFuture<NamespaceRecord>> futures = new ArrayList<>();
    for (ServerState s : servers) {
      if (s.up()) {
        futures.add(call(s.index(), Op.NS_CREATE, ns.id(), 0, b -> Codec.writeNamespace(b, ns),
            f -> Codec.readNamespace(payload(f))));
      } else {
        LOG.warn("server {} is down; it will learn namespace '{}' when a client attaches it", s.address(), name);
      }
    }
    for (CompletableFuture<NamespaceRecord> f : futures) {
      await(f);
    }
    return ns;
  }

  /** Deletes the namespace and its pages on every live server. */
  public void deleteNamespace(String name) throws VmdException {
    NamespaceRecord ns = namespace(name);
    List<CompletableFuture<Long>> futures = new ArrayList<>();
    for (ServerState s : servers) {
      if (s.up()) {
        futures.add(call(s.index(), Op.NS_DELETE, ns.id(), 0, null, f -> payload(f).readLong()));
      }
    }
    for (CompletableFuture<Long> f : futures) {
      try {
        await(f);
      } catch (VmdException e) {
        if (e.code() != ErrorCode.NO_NAMESPACE) {
          throw e;
        }
      }
    }
  }

  /** Pages and bytes of the namespace on each server. */
  public List<ServerUsage> namespaceUsage(String name) throws VmdException {
    return namespaceUsage(namespace(name));
  }

  /** Pages and bytes of the namespace on each server. */
  public List<ServerUsage> namespaceUsage(NamespaceRecord ns) throws VmdException {
    List<ServerUsage> out = new ArrayList<>();
    for (ServerState s : servers) {
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
  public ServerState[] refreshAvailability() throws VmdException {
    for (ServerState s : servers) {
      if (s.up()) {
        try {
          s.report(await(call(s.index(), Op.AVAILABILITY, 0, 0, null, f -> Codec.readAvailability(payload(f)))));
        } catch (VmdException e) {
          LOG.warn("{}", e.getMessage());
        }
      }
    }
    return servers;
  }

  /**
   * Attaches a namespace: rebuilds its location table from what every live server holds (so any
   * host can open a namespace another host wrote), keeping of each page only its newest copies, and,
   * for writing, raises its epoch on every live server so that an older writer's requests are refused
   * from now on, and deletes the stale and surplus copies it found.
   */
  public Namespace attach(String name, boolean forWriting) throws VmdException {
    Map<Integer, List<NamespaceRecord>> tables = tables();
    NamespaceRecord ns = null;
    for (List<NamespaceRecord> table : tables.values()) {
      for (NamespaceRecord r : table) {
        if (r.name().equals(name) && (ns == null || r.epoch() > ns.epoch())) {
          ns = r;
        }
      }
    }
    if (ns == null) {
      throw new VmdException(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    NamespaceRecord found = ns;
    // A server that missed the create (down at the time, or restarted empty) learns it now.
    for (Map.Entry<Integer, List<NamespaceRecord>> e : tables.entrySet()) {
      if (e.getValue().stream().noneMatch(r -> r.id() == found.id())) {
        await(call(e.getKey(), Op.NS_CREATE, found.id(), 0, b -> Codec.writeNamespace(b, found), f -> null));
      }
    }
    if (forWriting) {
      long epoch = ns.epoch() + 1;
      if (epoch > Frame.MAX_STAMPED_EPOCH) {
        throw new VmdException(ErrorCode.BAD_REQUEST, "namespace '" + name + "' has been attached for writing "
            + ns.epoch() + " times, the most page stamps can tell apart");
      }
      List<CompletableFuture<Long>> bumps = new ArrayList<>();
      for (int s : tables.keySet()) {
        bumps.add(call(s, Op.NS_ATTACH, ns.id(), epoch, null, Frame::epoch));
      }
      for (CompletableFuture<Long> b : bumps) {
        epoch = Math.max(epoch, await(b));
      }
      ns = ns.withEpoch(epoch);
    }
    LocationTable table = new LocationTable(ns.pages(), ns.replicas());
    NewestCopies copies = new NewestCopies(table, servers.length);
    List<CompletableFuture<Void>> lists = new ArrayList<>();
    for (int s : tables.keySet()) {
      lists.add(list(s, ns, copies::offer));
    }
    for (CompletableFuture<Void> l : lists) {
      await(l);
    }
    if (copies.discardedTotal() > 0) {
      LOG.info("namespace '{}': {} stale or surplus page copies found{}", ns.name(), copies.discardedTotal(),
          forWriting ? "; deleting them" : "");
    }
    // A new writer stamps above every copy it saw, and above any older writer's (lower epoch).
    long firstStamp = Math.max(Frame.firstStamp(ns.epoch()), copies.maxStamp() + 1);
    Namespace attached = new Namespace(this, ns, table, forWriting, firstStamp);
    if (forWriting) {
      List<CompletableFuture<Void>> deletes = new ArrayList<>();
      for (int s : tables.keySet()) {
        deletes.add(attached.deleteCopies(s, copies.discarded(s)));
      }
      await(CompletableFuture.allOf(deletes.toArray(new CompletableFuture<?>[0])));
    }
    return attached;
  }

  /**
   * Tells a server that lost it (it restarted empty) about a namespace, at the given record's epoch,
   * without blocking: creating it again is harmless when another writer got there first.
   */
  CompletableFuture<Void> learn(int server, NamespaceRecord ns) {
    return call(server, Op.NS_CREATE, ns.id(), 0, b -> Codec.writeNamespace(b, ns), f -> (Void) null)
        .handle((v, e) -> e == null || VmdException.from(e).code() == ErrorCode.EXISTS ? null
            : (Void) sneaky(VmdException.from(e)))
        .thenCompose(v -> call(server, Op.NS_ATTACH, ns.id(), ns.epoch(), null, f -> (Void) null));
  }

  private static Object sneaky(VmdException e) {
    throw new java.util.concurrent.CompletionException(e);
  }

  /**
   * Makes a server that came back (restarted empty, or one that missed changes) hold the namespace
   * again with its current record, epoch included, and returns the pages it holds of it, as a bitmap.
   */
  public long[] rejoin(int server, NamespaceRecord ns) throws VmdException {
    List<NamespaceRecord> table = await(call(server, Op.NS_LIST, 0, 0, null, f -> Codec.readNamespaces(payload(f))));
    if (table.stream().noneMatch(r -> r.id() == ns.id())) {
      await(call(server, Op.NS_CREATE, ns.id(), 0, b -> Codec.writeNamespace(b, ns), f -> null));
    }
    // Its epoch may be behind the writer's (it missed an attach): raise it, or older writers would pass.
    await(call(server, Op.NS_ATTACH, ns.id(), ns.epoch(), null, Frame::epoch));
    long[] held = new long[(int) ((ns.pages() + 63) >>> 6)];
    // One server's replies arrive in order on its connection's event loop: no lock needed.
    await(list(server, ns, (s, page, stamp) -> {
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
  private CompletableFuture<Void> list(int server, NamespaceRecord ns, ListSink sink) {
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

  /** Waits for {@code f}; a failure comes out as the {@link VmdException} that caused it. */
  public static <T> T await(CompletableFuture<T> f) throws VmdException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted");
    } catch (Exception e) {
      throw VmdException.from(e);
    }
  }

  static <T> T await(CompletableFuture<T> f, long millis) throws VmdException {
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

  /** Closes every connection and the event loops; a second call does nothing. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (ServerConnection[] cs : connections) {
      for (ServerConnection c : cs) {
        c.close();
      }
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
