package io.vmd.host;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.tls.ClusterTls;
import io.vmd.meta.HostMeta;
import io.vmd.meta.VmMeta;
import io.vmd.meta.VmState;
import io.vmd.migration.qemu.QemuVm;
import io.vmd.migration.qemu.QmpException;
import io.vmd.nbd.GatewayConfig;
import io.vmd.nbd.NbdGateway;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
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
   */
  public record Config(String name, HostPort api, Path socket, ClusterTls tls, String version, Path vmDir,
      Path kernel, Path initrd, String accel) {}

  /** The guests' kernel command line: swap on the namespace, then idle (benchmarks/vmlab's init). */
  static final String APPEND = "console=ttyS0 quiet panic=-1 vmlab.mode=vm";

  private final Config config;
  private final VmdClient client;
  private final NbdGateway gateway;
  private final Map<String, QemuVm> vms = new ConcurrentHashMap<>();
  private HostApiServer api;
  private HostMeta registered;

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
      agent.api = HostApiServer.start(config.api(), config.tls(), config.version(), agent);
      agent.registered = client.cluster().registerHost(config.name(),
          new HostPort(config.api().host(), agent.api.port()));
      LOG.info("host '{}' registered: API {}, {}", config.name(), agent.registered.api(), agent.registered.status());
      return agent;
    } catch (IOException | RuntimeException e) {
      agent.close();
      throw e;
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
        NbdEndpoint.unix(gateway.unixSocket()), config.kernel(), config.initrd(), APPEND, config.accel(), r.incoming());
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
    return info(vm);
  }

  @Override
  public synchronized HostApi.VmInfo stopVm(String name) throws Exception {
    QemuVm vm = vms.remove(name);
    if (vm == null) {
      throw new IllegalStateException("no VM '" + name + "' runs on host '" + config.name() + "'");
    }
    vm.close();
    VmMeta known = client.cluster().vm(name);
    if (known != null && known.host().equals(config.name())) {
      client.cluster().putVm(known.with(VmState.STOPPED, config.name(), ""), known.generation());
    }
    return new HostApi.VmInfo(name, vm.spec().namespace(), vm.spec().memoryBytes(), "stopped");
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
    return new HostApi.VmInfo(vm.spec().name(), vm.spec().namespace(), vm.spec().memoryBytes(), status);
  }

  /**
   * Stops the API and the gateway. The VMs' QEMUs run on (their NBD clients reconnect to the next
   * agent's gateway); a restarted agent finds them in its VM directory.
   */
  @Override
  public void close() throws InterruptedException {
    if (api != null) {
      api.close();
    }
    gateway.close();
  }
}
