package io.vmd.host;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.meta.HostMeta;
import io.vmd.meta.HostStatus;
import io.vmd.meta.VmMeta;
import io.vmd.meta.VmState;
import io.vmd.migration.qemu.BalloonReservation;
import io.vmd.migration.qemu.QemuMigration;
import io.vmd.migration.qemu.QemuTlsFiles;
import io.vmd.migration.qemu.QemuVm;
import io.vmd.migration.qemu.Qmp;
import io.vmd.migration.qemu.QmpException;
import io.vmd.migration.wss.WorkingSetTracker;
import io.vmd.nbd.ExportMetrics;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon of a hypervisor host ({@code vmd host}): the NBD gateway its QEMUs reach through a Unix
 * socket, its authenticated API, and its membership in the control plane. It owns namespaces under
 * one owner id in every life, so a restarted agent takes its VMs' swap back at once.
 */
public final class HostAgent implements HostService, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(HostAgent.class);

  /**
   * How an agent runs.
   *
   * @param name the host's name: its certificate's identity (with TLS) and its name in the cluster
   * @param api where its API listens: an address other hosts and the CLI reach (not a wildcard)
   * @param socket the Unix socket its QEMUs reach its gateway on (0600)
   * @param tls its node certificate (role host), or null with --insecure
   * @param version the build, as Status reports it
   * @param vmDir where its VMs keep their files (QMP socket, serial log), one 0700 directory each
   * @param kernel the guests' kernel; {@code initrd} their initramfs; {@code accel} QEMU's accelerator
   * @param certsDir where {@code tls} came from: migration streams use the same node certificate (null
   *     with --insecure: streams in plain TCP)
   * @param tracking the working-set loop run for every running VM, its balloon following the VM's
   *     page-ins through this gateway (max: the VM's memory); null runs none
   */
  public record Config(String name, HostPort api, Path socket, ClusterTls tls, String version, Path vmDir,
      Path kernel, Path initrd, String accel, Path certsDir, WorkingSetTracker.Settings tracking) {}

  /** How long a source waits for the destination to record the VM's arrival once QEMU says completed. */
  static final Duration ARRIVAL_WAIT = Duration.ofSeconds(30);
  /** How often the agent looks for VMs whose QEMU ended. */
  static final Duration SUPERVISE_EVERY = Duration.ofSeconds(2);
  /** Deadline of calls to another host's agent. */
  static final Duration PEER_DEADLINE = Duration.ofSeconds(60);

  /** The guests' kernel command line: swap on the namespace, then idle (benchmarks/vmlab's init). */
  static final String APPEND = "console=ttyS0 quiet panic=-1 vmlab.mode=vm";

  private final Config config;
  private final VmdClient client;
  private final NbdGateway gateway;
  private final Map<String, QemuVm> vms = new ConcurrentHashMap<>();
  /** The working-set loop of each running VM. */
  private final Map<String, WorkingSetTracker> trackers = new ConcurrentHashMap<>();
  /** VMs arriving here right now (their watchers look after them). */
  private final Set<String> arriving = ConcurrentHashMap.newKeySet();
  /** VMs leaving this host right now: one migration at a time each. */
  private final Set<String> leaving = ConcurrentHashMap.newKeySet();
  private HostApiServer api;
  private HostMeta registered;
  /** Notices VMs whose QEMU ended (the guest powered off, QEMU crashed or was killed). */
  private final ScheduledExecutorService supervisor = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "vmd-host-supervisor");
    t.setDaemon(true);
    return t;
  });

  private HostAgent(Config config, VmdClient client, NbdGateway gateway) {
    this.config = config;
    this.client = client;
    this.gateway = gateway;
  }

  /** Starts the gateway and the API, then registers the host; {@code client} stays the caller's to close. */
  public static HostAgent start(Config config, VmdClient client, MeterRegistry registry)
      throws IOException, InterruptedException {
    if (config.api().host().equals("0.0.0.0") || config.api().host().equals("::")) {
      throw new IllegalArgumentException("the API address is what other hosts dial, so not a wildcard: give this "
          + "host's address, e.g. --api 10.0.0.5:7420");
    }
    NbdGateway gateway = NbdGateway.start(new GatewayConfig(null, null).withUnixSocket(config.socket()), client,
        registry);
    HostAgent agent = new HostAgent(config, client, gateway);
    try {
      agent.adoptRunning();
      agent.api = HostApiServer.start(config.api(), config.tls(), config.version(), agent);
      agent.registered = client.cluster().registerHost(config.name(),
          new HostPort(config.api().host(), agent.api.port()));
      LOG.info("host '{}' registered: API {}, {}", config.name(), agent.registered.api(), agent.registered.status());
      agent.supervisor.scheduleWithFixedDelay(agent::supervise, SUPERVISE_EVERY.toMillis(), SUPERVISE_EVERY.toMillis(),
          TimeUnit.MILLISECONDS);
      return agent;
    } catch (IOException | RuntimeException e) {
      agent.close();
      throw e;
    }
  }

  /**
   * Takes back the VMs whose QEMUs outlived the previous agent (a restart, an upgrade): each connects
   * to this gateway's socket again by itself. A QEMU left waiting for a migration, or left behind by
   * one, is stopped (that migration is over); a VM recorded as migrating away from here that still
   * runs here is recorded running here again.
   */
  private void adoptRunning() throws IOException {
    if (!Files.isDirectory(config.vmDir())) {
      return;
    }
    try (var dirs = Files.list(config.vmDir())) {
      for (Path dir : dirs.filter(Files::isDirectory).sorted().toList()) {
        QemuVm vm;
        try {
          vm = QemuVm.adopt(dir, config.kernel(), config.initrd(), config.accel());
        } catch (IOException | RuntimeException e) {
          LOG.warn("VM in {} not taken back: {}", dir, e.getMessage());
          continue;
        }
        if (vm != null) {
          adopt(vm);
        }
      }
    }
  }

  private void adopt(QemuVm vm) {
    String name = vm.spec().name();
    try {
      String status = vm.status();
      if (!status.equals("running") && !status.equals("paused")) {
        LOG.info("VM '{}' found {}: its migration is over, so its QEMU is stopped", name, status);
        vm.close();
        return;
      }
      VmMeta known = client.cluster().vm(name);
      if (known != null && !known.host().equals(config.name()) && known.state() == VmState.RUNNING) {
        // Another host runs it now: this copy is stale (its gateway's writes are refused anyway).
        LOG.error("VM '{}' runs on host '{}'; its stale copy here is paused, not taken back", name, known.host());
        vm.qmp().call("stop", null, Duration.ofSeconds(10));
        return;
      }
      vms.put(name, vm);
      if (known != null && known.host().equals(config.name()) && known.state() == VmState.MIGRATING) {
        recordBack(name);
      }
      track(vm);
      LOG.info("VM '{}' taken back: {}, swap on '{}'", name, status, vm.spec().namespace());
    } catch (QmpException | VmdException e) {
      LOG.warn("VM '{}' taken back, its state unknown: {}", name, e.getMessage());
      vms.put(name, vm);
    }
  }

  /**
   * Runs the working-set loop for a VM that runs here (the papers' reservation: shrink while it pages
   * in at most τ, grow while it pages in more), unless the agent runs none.
   */
  private void track(QemuVm vm) {
    WorkingSetTracker.Settings t = config.tracking();
    String name = vm.spec().name();
    if (t == null) {
      return;
    }
    String ns = vm.spec().namespace();
    long memory = vm.spec().memoryBytes();
    long floor = Math.min(t.minBytes(), memory);
    try {
      WorkingSetTracker tracker = new WorkingSetTracker(() -> {
        ExportMetrics m = gateway.metrics(ns);
        return m == null ? 0 : (long) m.pagesIn() * Pages.PAGE_SIZE;
      }, new BalloonReservation(vm.qmp(), memory, floor), new WorkingSetTracker.Settings(t.alpha(), t.beta(),
          t.tauBytesPerSecond(), t.fastInterval(), t.slowInterval(), floor, memory));
      WorkingSetTracker old = trackers.put(name, tracker.start());
      if (old != null) {
        old.close();
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn("VM '{}': no working-set loop: {}", name, e.getMessage());
    }
  }

  private void untrack(String name) {
    WorkingSetTracker t = trackers.remove(name);
    if (t != null) {
      t.close();
    }
  }

  /**
   * A VM whose QEMU ended by itself (the guest powered off, QEMU crashed or was killed) leaves the
   * agent's care and is recorded STOPPED; its namespace keeps its pages for the next start. Incoming
   * VMs are their watchers' to look after, leaving ones their migrations'.
   */
  private void supervise() {
    for (Map.Entry<String, QemuVm> e : vms.entrySet()) {
      String name = e.getKey();
      QemuVm vm = e.getValue();
      if (vm.alive() || leaving.contains(name) || arriving.contains(name)) {
        continue;
      }
      try {
        if (!vms.remove(name, vm)) {
          continue;
        }
        untrack(name);
        LOG.warn("VM '{}' ended (its QEMU: {})", name, lastLine(vm));
        vm.close();
        record(name, v -> v.host().equals(config.name()) && v.state() == VmState.RUNNING,
            v -> v.with(VmState.STOPPED, config.name(), ""));
      } catch (VmdException | RuntimeException x) {
        LOG.warn("VM '{}' ended, not yet recorded: {}", name, x.getMessage());
      }
    }
  }

  /** The host as the control plane took it at registration. */
  public HostMeta registered() {
    return registered;
  }

  /** The Unix socket its gateway serves. */
  public Path socket() {
    return gateway.unixSocket();
  }

  /**
   * Starts QEMU for the VM, its swap disk the namespace through this host's gateway socket, and records
   * it in the control plane as running here (STARTING while it waits for a migration).
   */
  @Override
  public synchronized HostApi.VmInfo startVm(HostApi.StartVm r) throws Exception {
    QemuVm.checkName(r.name());
    if (vms.containsKey(r.name())) {
      throw new IllegalStateException("VM '" + r.name() + "' already runs on host '" + config.name() + "'");
    }
    VmMeta known = client.cluster().vm(r.name());
    if (known != null && !known.host().equals(config.name()) && known.state() != VmState.STOPPED
        && known.state() != VmState.LOST) {
      throw new IllegalStateException("VM '" + r.name() + "' runs on host '" + known.host() + "'");
    }
    QemuVm.Spec spec = new QemuVm.Spec(r.name(), r.memoryBytes(), r.namespace(),
        NbdEndpoint.unix(gateway.unixSocket()), config.kernel(), config.initrd(),
        r.append() == null ? APPEND : r.append(), config.accel(), r.incoming());
    QemuVm vm = QemuVm.start(spec, config.vmDir().resolve(r.name()));
    try {
      VmMeta wanted = VmMeta.of(r.name(), config.name(), r.namespace(), r.memoryBytes(),
          r.incoming() ? VmState.STARTING : VmState.RUNNING, "");
      client.cluster().putVm(wanted, known == null ? 0 : known.generation());
    } catch (VmdException e) {
      vm.close(); // never a VM the cluster does not know runs here
      throw new IllegalStateException("VM '" + r.name() + "' not recorded, so not started: " + e.getMessage(), e);
    }
    vms.put(r.name(), vm);
    if (!r.incoming()) {
      track(vm);
    }
    return info(vm);
  }

  @Override
  public synchronized HostApi.VmInfo stopVm(String name) throws Exception {
    QemuVm vm = vms.remove(name);
    if (vm == null) {
      throw new IllegalStateException("no VM '" + name + "' runs on host '" + config.name() + "'");
    }
    untrack(name);
    vm.close();
    record(name, v -> v.host().equals(config.name()), v -> v.with(VmState.STOPPED, config.name(), ""));
    return new HostApi.VmInfo(name, vm.spec().namespace(), vm.spec().memoryBytes(), "stopped", 0);
  }

  /**
   * Moves a VM of this host to host {@code to}: the control plane records it MIGRATING there, the
   * destination's agent readies an incoming QEMU on its own gateway, and this host's QEMU sends the
   * guest's memory (TLS with both hosts' node certificates when secure). At switch-over, while the
   * guest is paused, this host's gateway is fenced off the namespace and the destination's claims it
   * ({@link #takeNamespace}). The destination's agent records the VM on its host when its QEMU has it
   * all. Before switch-over any failure or cancellation leaves the VM running here, this host
   * owning its namespace; after it, the VM is never resumed here (it is lost if it does not arrive).
   */
  @Override
  public QemuMigration.Result migrate(HostApi.Migrate r, Consumer<HostApi.MigrationUpdate> progress,
      BooleanSupplier cancelled) throws Exception {
    QemuMigration.Policy policy = QemuMigration.Policy.parse(r.policy());
    if (r.bytesPerSecond() <= 0 || r.timeoutMillis() <= 0) {
      throw new IllegalArgumentException("a migration needs a positive bandwidth and timeout");
    }
    if (r.to().equals(config.name())) {
      throw new IllegalArgumentException("VM '" + r.name() + "' already runs on host '" + r.to() + "'");
    }
    QemuVm vm = vms.get(r.name());
    if (vm == null || !leaving.add(r.name())) {
      throw new IllegalStateException(vm == null ? "no VM '" + r.name() + "' runs on host '" + config.name() + "'"
          : "VM '" + r.name() + "' is already migrating");
    }
    try {
      HostMeta dest = client.cluster().host(r.to());
      if (dest == null || dest.status() != HostStatus.ACTIVE) {
        throw new IllegalStateException(dest == null ? "no host '" + r.to() + "' in the cluster"
            : "host '" + r.to() + "' is " + dest.status().name().toLowerCase(Locale.ROOT));
      }
      VmMeta known = client.cluster().vm(r.name());
      if (known == null || !known.host().equals(config.name()) || known.state() != VmState.RUNNING) {
        throw new IllegalStateException("VM '" + r.name() + "' is " + (known == null ? "not in the control plane"
            : known.state().name().toLowerCase(Locale.ROOT) + " on host '" + known.host() + "'"));
      }
      VmMeta migrating = client.cluster().putVm(known.with(VmState.MIGRATING, config.name(), r.to()),
          known.generation());
      // The reservation holds still while the VM leaves: what it holds is what Agile's pass sends.
      untrack(r.name());
      return migrateTo(vm, dest, migrating, policy, r, progress, cancelled);
    } finally {
      leaving.remove(r.name());
    }
  }

  private QemuMigration.Result migrateTo(QemuVm vm, HostMeta dest, VmMeta migrating, QemuMigration.Policy policy,
      HostApi.Migrate r, Consumer<HostApi.MigrationUpdate> progress, BooleanSupplier cancelled) throws Exception {
    String name = r.name();
    String ns = migrating.namespace();
    boolean[] switchedOver = {false};
    try (HostApiClient peer = HostApiClient.connect(dest.api(), config.tls(), PEER_DEADLINE)) {
      try {
        HostApi.IncomingAt at = peer.prepareIncoming(new HostApi.Incoming(name, policy.label(), r.timeoutMillis()));
        Path creds = config.certsDir() == null ? null : tlsFiles(vm.dir().resolve("migration-tls").resolve("client"),
            "client");
        QemuMigration.Result result = QemuMigration.newBuilder(vm.qmp()).policy(policy).to(at.host(), at.port())
            .bandwidth(r.bytesPerSecond()).timeout(Duration.ofMillis(r.timeoutMillis())).tls(creds)
            .cancelWhen(cancelled)
            .switchOver(() -> {
              // The source paused, its disk requests drained: this host's gateway is fenced, and the
              // destination's claims the namespace before any other gateway could.
              client.namespaces().fence(ns);
              peer.takeNamespace(name);
              switchedOver[0] = true;
            })
            .progress(m -> progress.accept(new HostApi.MigrationUpdate(m.path("status").asText(),
                m.path("ram").path("transferred").asLong(), m.path("ram").path("remaining").asLong(), null)))
            .run();
        VmMeta arrived = awaitArrival(name, migrating.generation());
        LOG.info("VM '{}' migrated to host '{}' ({}): {} ms, {} bytes", name, dest.name(), arrived.state(),
            result.totalMillis(), result.transferredBytes());
        vms.remove(name, vm);
        vm.close();
        return result;
      } catch (Exception e) {
        if (!switchedOver[0] && vm.alive()) {
          // Never switched over: the guest runs on here, this host owning its namespace (or, if the
          // switch-over failed after the fence, its gateway claims it again with the guest's next write).
          stopIncoming(peer, name);
          recordBack(name);
          track(vm);
          throw new IllegalStateException("VM '" + name + "' stays on host '" + config.name() + "': "
              + e.getMessage(), e);
        }
        // Past the switch-over the destination may have run the guest: it is never resumed here.
        LOG.error("VM '{}' lost migrating to host '{}' after its switch-over: {}", name, dest.name(), e.toString());
        record(name, v -> v.state() == VmState.MIGRATING, v -> v.with(VmState.LOST, v.host(), ""));
        throw new IllegalStateException("VM '" + name + "' lost: the migration to host '" + dest.name()
            + "' failed after its switch-over (" + e.getMessage() + ")", e);
      }
    }
  }

  /**
   * Called by the source at switch-over, its gateway fenced: this gateway claims the VM's namespace,
   * which its incoming QEMU has open and nobody owns now.
   */
  @Override
  public HostApi.VmInfo takeNamespace(String name, Identity caller) throws Exception {
    VmMeta known = migratingHere(name, caller);
    QemuVm vm = vms.get(name);
    if (vm == null) {
      throw new IllegalStateException("VM '" + name + "' is not arriving on host '" + config.name() + "'");
    }
    if (!gateway.claim(known.namespace()).get(PEER_DEADLINE.toSeconds(), TimeUnit.SECONDS)) {
      throw new IllegalStateException("namespace '" + known.namespace() + "' not claimed: another owner holds it");
    }
    return info(vm);
  }

  /**
   * The record of VM {@code name}, which must be migrating to this host from the host calling (a
   * host's agent may only move its own VMs here; an admin any).
   */
  private VmMeta migratingHere(String name, Identity caller) throws VmdException {
    VmMeta known = client.cluster().vm(name);
    if (known == null || known.state() != VmState.MIGRATING || !known.target().equals(config.name())) {
      throw new IllegalStateException("VM '" + name + "' is not migrating to host '" + config.name() + "'");
    }
    if (caller != null && caller.role() == Role.HOST && !caller.name().equals(known.host())) {
      throw new IllegalStateException("VM '" + name + "' runs on host '" + known.host() + "', not on '"
          + caller.name() + "'");
    }
    return known;
  }

  private void stopIncoming(HostApiClient peer, String name) {
    try {
      peer.stopVm(name);
    } catch (RuntimeException e) {
      LOG.info("the destination's incoming VM '{}' not stopped: {} (it stops itself)", name, e.getMessage());
    }
  }

  private void recordBack(String name) {
    try {
      record(name, v -> v.state() == VmState.MIGRATING && v.host().equals(config.name()),
          v -> v.with(VmState.RUNNING, config.name(), ""));
    } catch (VmdException e) {
      LOG.warn("VM '{}' runs here but is still recorded as migrating: {}", name, e.getMessage());
    }
  }

  /** The VM's record once the destination's agent has recorded how the migration ended there. */
  private VmMeta awaitArrival(String name, long migratingGeneration) throws VmdException, InterruptedException {
    long deadline = System.nanoTime() + ARRIVAL_WAIT.toNanos();
    while (true) {
      VmMeta v = client.cluster().vm(name);
      if (v == null || v.generation() != migratingGeneration) {
        if (v == null || v.state() != VmState.RUNNING) {
          throw new IllegalStateException("VM '" + name + "' arrived but is recorded " + (v == null ? "nowhere"
              : v.state().name().toLowerCase(Locale.ROOT) + " on host '" + v.host() + "'"));
        }
        return v;
      }
      if (System.nanoTime() > deadline) {
        // QEMU completed; the destination's agent has not said so yet. The record stays MIGRATING.
        LOG.warn("VM '{}': migration completed, not yet recorded by the destination", name);
        return v;
      }
      Thread.sleep(100);
    }
  }

  /**
   * Changes the VM's record with {@code change} if {@code when} holds for it, retrying if another
   * writer came first; returns the record as it is after.
   */
  private VmMeta record(String name, Predicate<VmMeta> when, UnaryOperator<VmMeta> change) throws VmdException {
    for (int attempt = 0; ; attempt++) {
      VmMeta v = client.cluster().vm(name);
      if (v == null || !when.test(v)) {
        return v;
      }
      try {
        return client.cluster().putVm(change.apply(v), v.generation());
      } catch (VmdException e) {
        if (e.code() != ErrorCode.STALE_EPOCH || attempt >= 5) {
          throw e;
        }
      }
    }
  }

  /**
   * Starts QEMU waiting for VM {@code r.name()}, which the control plane records as MIGRATING from the
   * calling host to this one, on this host's gateway and its API address, and watches it until it has
   * arrived (then records it RUNNING here), failed (stops it) or been lost in post-copy (records it LOST
   * and stops it: what the source no longer sends cannot be found anywhere).
   */
  @Override
  public synchronized HostApi.IncomingAt prepareIncoming(HostApi.Incoming r, Identity caller) throws Exception {
    QemuVm.checkName(r.name());
    QemuMigration.Policy policy = QemuMigration.Policy.parse(r.policy());
    VmMeta known = migratingHere(r.name(), caller);
    if (vms.containsKey(r.name())) {
      throw new IllegalStateException("VM '" + r.name() + "' already runs on host '" + config.name() + "'");
    }
    QemuVm.Spec spec = new QemuVm.Spec(r.name(), known.memoryBytes(), known.namespace(),
        NbdEndpoint.unix(gateway.unixSocket()), config.kernel(), config.initrd(), APPEND, config.accel(), true);
    QemuVm vm = QemuVm.start(spec, config.vmDir().resolve(r.name()));
    try {
      String host = config.api().host();
      int port = freePort(host);
      Path creds = config.certsDir() == null ? null : tlsFiles(vm.dir().resolve("migration-tls").resolve("server"),
          "server");
      QemuMigration.prepareIncoming(vm.qmp(), policy, host, port, creds);
      vms.put(r.name(), vm);
      arriving.add(r.name());
      long deadline = System.nanoTime() + Duration.ofMillis(r.timeoutMillis()).plus(PEER_DEADLINE).toNanos();
      Thread watch = new Thread(() -> watchIncoming(vm, deadline), "incoming-" + r.name());
      watch.setDaemon(true);
      watch.start();
      LOG.info("VM '{}' incoming from host '{}' on {}:{} ({})", r.name(), known.host(), host, port, policy.label());
      return new HostApi.IncomingAt(host, port);
    } catch (IOException | RuntimeException e) {
      vm.close();
      throw e;
    }
  }

  private void watchIncoming(QemuVm vm, long deadline) {
    String name = vm.spec().name();
    boolean[] postcopy = {false};
    while (true) {
      try {
        if (watchStep(vm, postcopy, deadline)) {
          arriving.remove(name);
          return;
        }
      } catch (QmpException | VmdException e) {
        // Keep watching: a control-plane or QMP hiccup must not leave the VM unrecorded.
        LOG.warn("watching incoming VM '{}': {}", name, e.getMessage());
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        arriving.remove(name);
        return;
      }
    }
  }

  /** One look at an incoming VM; true once its migration has ended one way or another. */
  private boolean watchStep(QemuVm vm, boolean[] postcopy, long deadline) throws QmpException, VmdException {
    String name = vm.spec().name();
    if (!vm.alive()) {
      // A failed incoming migration ends QEMU (or the source's agent stopped it): the guest runs on there.
      LOG.info("incoming VM '{}' ended before it arrived (its QEMU: {})", name, lastLine(vm));
      vms.remove(name, vm);
      return true;
    }
    // Events first: once the source is gone in post-copy, QEMU's main loop may hang on a page that
    // will never come, and query-migrate with it; the migration thread's events still arrive.
    String status = null;
    for (Qmp.Event e : vm.qmp().events()) {
      if (e.name().equals("MIGRATION")) {
        String s = e.data().path("status").asText();
        postcopy[0] |= s.startsWith("postcopy");
        if (s.equals("postcopy-paused")) {
          status = s;
        }
      }
    }
    if (status == null) {
      status = vm.qmp().call("query-migrate", null, Duration.ofSeconds(10)).path("status").asText();
    }
    postcopy[0] |= status.startsWith("postcopy");
    Predicate<VmMeta> comingHere = x -> x.state() == VmState.MIGRATING && x.target().equals(config.name());
    if (status.equals("completed")) {
      LOG.info("VM '{}' arrived: {}", name, record(name, comingHere, x -> x.with(VmState.RUNNING, config.name(), "")));
      track(vm);
      return true;
    }
    boolean lost = status.equals("postcopy-paused") || status.equals("failed") && postcopy[0];
    if (!lost && !status.equals("failed") && !status.equals("cancelled") && (postcopy[0] || System.nanoTime() < deadline)) {
      return false;
    }
    if (lost) {
      // The source went away in post-copy: the pages it had not sent are nowhere else.
      record(name, comingHere, x -> x.with(VmState.LOST, config.name(), ""));
      LOG.error("VM '{}' lost: its source went away during post-copy", name);
    } else {
      LOG.info("incoming VM '{}' stopped: migration {}", name, status.isEmpty() ? "never came" : status);
    }
    vms.remove(name, vm);
    vm.close();
    return true;
  }

  private static String lastLine(QemuVm vm) {
    try {
      Path log = vm.dir().resolve(QemuVm.LOG);
      String s = Files.exists(log) ? Files.readString(log).strip() : "";
      return s.isEmpty() ? "no output" : s.substring(s.lastIndexOf('\n') + 1);
    } catch (IOException e) {
      return e.toString();
    }
  }

  private Path tlsFiles(Path dir, String end) throws IOException {
    CertsDir certs = new CertsDir(config.certsDir());
    return QemuTlsFiles.write(dir, end, certs.caCert(), certs.nodeCert(), certs.nodeKey());
  }

  /** A port free on this host's API address now, for a destination QEMU's migration listener. */
  private static int freePort(String host) throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(host))) {
      return s.getLocalPort();
    }
  }

  @Override
  public HostApi.VmInfo balloonVm(String name, long bytes) throws Exception {
    QemuVm vm = vms.get(name);
    if (vm == null) {
      throw new IllegalStateException("no VM '" + name + "' runs on host '" + config.name() + "'");
    }
    if (bytes < (64L << 20) || bytes > vm.spec().memoryBytes()) {
      throw new IllegalArgumentException("a balloon target is between 64 MiB and the VM's "
          + (vm.spec().memoryBytes() >> 20) + " MiB");
    }
    // The operator's reservation holds until the VM moves or the agent restarts: the loop steps aside.
    untrack(name);
    vm.balloon(bytes);
    return info(vm);
  }

  @Override
  public List<HostApi.VmInfo> listVms() throws Exception {
    List<HostApi.VmInfo> out = new ArrayList<>();
    for (QemuVm vm : new TreeMap<>(vms).values()) {
      out.add(info(vm));
    }
    return out;
  }

  private static HostApi.VmInfo info(QemuVm vm) {
    String status;
    try {
      status = vm.alive() ? vm.status() : "stopped";
    } catch (QmpException e) {
      status = "unreachable: " + e.getMessage();
    }
    return new HostApi.VmInfo(vm.spec().name(), vm.spec().namespace(), vm.spec().memoryBytes(), status,
        vm.balloonActual().orElse(0L));
  }

  /**
   * Stops the API and the gateway. The VMs' QEMUs run on (their NBD clients reconnect to the next
   * agent's gateway); a restarted agent finds them in its VM directory.
   */
  @Override
  public void close() throws InterruptedException {
    supervisor.shutdownNow();
    if (api != null) {
      api.close();
    }
    for (String name : List.copyOf(trackers.keySet())) {
      untrack(name);
    }
    gateway.close();
  }
}
