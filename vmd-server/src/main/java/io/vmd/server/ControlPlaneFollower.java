package io.vmd.server;

import io.vmd.common.HostPort;
import io.vmd.meta.Member;
import io.vmd.meta.MetaClient;
import io.vmd.meta.MetaConfig;
import io.vmd.meta.MetaException;
import io.vmd.meta.MetaView;
import io.vmd.meta.NamespaceMeta;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.NamespaceRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A server's link to the control plane: joins it under a stable id, then follows its view — the
 * namespaces and their epochs go into the server's {@link NamespaceTable}, the pages of deleted
 * namespaces are dropped — and says how fresh that view is. A server whose view is stale takes no
 * writes (see {@link ServerHandler}), so a writer fenced by a hand-off is refused even by a server that
 * did not hear of it directly. Its own thread; nothing here runs on an event loop.
 */
final class ControlPlaneFollower implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ControlPlaneFollower.class);
  static final Duration POLL = Duration.ofMillis(200);
  /**
   * A view older than this is stale: writes wait (NOT_READY) until the server catches up. It bounds
   * how long a server cut off from the control plane (and from a new owner, whose attach makes every
   * server it reaches catch up at once) can still take a fenced writer's pages. Such a page, if the new
   * owner has not rewritten it, can still win the merge by stamp when that server answers late: the
   * window is this bound, not zero.
   */
  static final Duration STALE_AFTER = Duration.ofSeconds(2);
  private static final String ID_FILE = "server-id";
  private static final String CLUSTER_FILE = "control-plane-id";

  private final VmdServer server;
  private final MetaClient meta;
  private final String id;
  private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-server-control-plane");
    t.setDaemon(true);
    return t;
  });
  private volatile Member self;
  private volatile long version = -1;
  private volatile long syncedAtNanos = System.nanoTime() - TimeUnit.DAYS.toNanos(1);
  private volatile boolean closed;

  ControlPlaneFollower(VmdServer server, List<HostPort> voters) {
    this.server = server;
    this.meta = MetaClient.connect(server.config().cluster(), voters, MetaConfig.REQUEST_DEADLINE, server.config().tls());
    this.id = loadOrCreateId(server.config().dataDir());
  }

  /** A persisted server keeps its id in its data directory; an in-memory one is new in every life. */
  private static String loadOrCreateId(Path dir) {
    String fresh = UUID.randomUUID().toString();
    if (dir == null) {
      return fresh;
    }
    Path f = dir.resolve(ID_FILE);
    try {
      if (Files.exists(f)) {
        return Files.readString(f, StandardCharsets.UTF_8).trim();
      }
      Files.createDirectories(dir);
      Files.writeString(f, fresh + "\n", StandardCharsets.UTF_8);
      return fresh;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot keep the server id in " + f + ": " + e.getMessage(), e);
    }
  }

  /**
   * Joins: registers at {@code address}, takes the namespace table, then becomes ACTIVE. Blocks until
   * the control plane answers (its client retries within its deadline).
   */
  void join(HostPort address) throws MetaException {
    MetaView before = meta.view();
    checkCluster(before, false);
    self = meta.register(id, address, server.config().dataDir() != null);
    MetaView v = meta.view();
    checkCluster(v, true);
    apply(v);
    if (self.status() == ServerStatus.JOINING) {
      self = meta.setStatus(self.slot(), ServerStatus.ACTIVE);
    }
    LOG.info("joined the control plane {} as server {} (slot {}, {})", meta.seeds(), id, self.slot(), self.status());
    thread.scheduleWithFixedDelay(this::poll, POLL.toMillis(), POLL.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * A persisted server remembers which control plane it belongs to: its pages are keyed by namespace
   * ids that mean other VMs under another one.
   */
  private void checkCluster(MetaView v, boolean record) {
    Path dir = server.config().dataDir();
    if (dir == null || v.clusterId() == 0) {
      return;
    }
    Path f = dir.resolve(CLUSTER_FILE);
    try {
      String mine = Long.toHexString(v.clusterId());
      if (Files.exists(f)) {
        String kept = Files.readString(f, StandardCharsets.UTF_8).trim();
        if (!kept.equals(mine)) {
          throw new IllegalStateException("the data directory " + dir + " belongs to another control plane ("
              + kept + ", this one is " + mine + "): its pages are other VMs'; give this server an empty data directory");
        }
      } else if (record) {
        Files.writeString(f, mine + "\n", StandardCharsets.UTF_8);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot check " + f + ": " + e.getMessage(), e);
    }
  }

  private void poll() {
    if (closed || server.frozen()) {
      return;
    }
    long asked = System.nanoTime();
    try {
      MetaView v = meta.viewIfChanged(version, false);
      if (v != null) {
        apply(v);
      } else {
        syncedAtNanos = asked; // fresh as of when it asked, not when the answer came
      }
    } catch (MetaException | RuntimeException e) {
      LOG.warn("control plane {}: {}", meta.seeds(), e.getMessage());
    }
  }

  /**
   * Catches up now with a linearizable read (a client brought a newer epoch than this server knows);
   * completes when the table holds everything the control plane had committed before the call.
   */
  CompletableFuture<Void> syncNow() {
    long asked = System.nanoTime();
    return CompletableFuture.runAsync(() -> {
      if (syncedAtNanos - asked > 0) {
        return; // a sync that started after the ask has already finished
      }
      try {
        apply(meta.view());
      } catch (MetaException e) {
        throw new CompletionException(e);
      }
    }, thread);
  }

  /** Whether the server's view is recent enough to take writes on it. */
  boolean fresh() {
    return System.nanoTime() - syncedAtNanos < STALE_AFTER.toNanos();
  }

  String id() {
    return id;
  }

  Member self() {
    return self;
  }

  private synchronized void apply(MetaView v) {
    if (server.frozen()) {
      return; // a hung host (fault injection) learns nothing until it thaws
    }
    long started = System.nanoTime();
    List<NamespaceRecord> live = new ArrayList<>();
    for (NamespaceMeta n : v.namespaces()) {
      live.add(n.record());
    }
    NamespaceTable table = server.namespaces();
    for (NamespaceRecord gone : table.replaceAll(live, server.metrics())) {
      if (v.deleted(gone.id())) {
        long pages = server.store().deleteNamespace(gone.id());
        LOG.info("namespace '{}' (id {}) was deleted: {} pages dropped", gone.name(), gone.id(), pages);
      }
    }
    for (Member m : v.servers()) {
      if (m.id().equals(id)) {
        self = m;
      }
    }
    version = v.version();
    syncedAtNanos = started;
  }

  @Override
  public void close() {
    closed = true;
    thread.shutdownNow();
    meta.close();
  }
}
