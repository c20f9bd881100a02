package io.vmd.cli;

import io.grpc.StatusRuntimeException;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.MetricsEndpoint;
import io.vmd.common.RoleMetrics;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.host.HostAgent;
import io.vmd.host.HostApi;
import io.vmd.host.HostApiClient;
import io.vmd.meta.HostMeta;
import io.vmd.meta.VmMeta;
import io.vmd.meta.VmState;
import io.vmd.migration.wss.WorkingSetTracker;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

// One string per paragraph: picocli wraps it to the terminal.
@Command(name = "host", mixinStandardHelpOptions = true, description = "Run a hypervisor host's agent: the NBD "
    + "gateway its QEMUs reach through a Unix socket, its API (gRPC, mutual TLS; admins and other hosts only) and its "
    + "membership in the cluster. Its certificate is a node certificate of role host (vmd cert create-node NAME "
    + "ADDRESS... --role host), whose first name is the host's. VMs are started on it with vmd vm start --host "
    + "and moved to another host with vmd migrate NAME --to HOST; their QEMUs outlive a restart of the agent.",
    subcommands = {HostCommand.ListHosts.class, HostCommand.Status.class})
final class HostCommand implements Callable<Integer> {
  /** A host as vmd host list shows it ({@code {"hosts":[...]}}); agent: up, or why its agent did not answer. */
  record HostRow(String name, String api, String status, long vms, String agent) {}

  /** vmd host status: who the agent is, and whom it took the caller for. */
  record AgentStatus(String host, String api, String version, String caller) {}

  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Option(names = "--name", paramLabel = "NAME",
      description = "The host's name (default: its certificate's; required with --insecure).")
  String name;

  @Option(names = "--api", defaultValue = "127.0.0.1:7420", paramLabel = "HOST:PORT",
      description = "Where the API listens: this host's address as other hosts dial it, named by its certificate "
          + "(default: ${DEFAULT-VALUE}).")
  String api;

  @Option(names = "--socket", defaultValue = "/run/vmd/nbd.sock", paramLabel = "PATH",
      description = "The gateway's Unix socket for this host's QEMUs, made 0600 (default: ${DEFAULT-VALUE}).")
  Path socket;

  @Option(names = "--metrics", paramLabel = "HOST:PORT", description = "Serve Prometheus metrics at /metrics.")
  String metrics;

  @CommandLine.Mixin VmDir vms;

  @Option(names = "--kernel", paramLabel = "FILE",
      description = "The guests' kernel (default: vmlinuz of benchmarks/vmlab's build, $VMD_VMLAB_DIR or ~/.cache/vmd-vmlab).")
  Path kernel;

  @Option(names = "--initrd", paramLabel = "FILE", description = "The guests' initramfs (default: the vmlab build's).")
  Path initrd;

  @Option(names = "--track", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "Run the working-set loop for every VM (the Agile paper's, as vmd vm track): its balloon shrinks "
          + "by 5 %% every 2 s while the VM pages in at most 4 KiB/s through this gateway and grows by 3 %% while it "
          + "pages in more, settling to 30 s steps (default: on). vmd vm balloon takes a VM out of it until it "
          + "moves or the agent restarts.")
  boolean track;

  @Option(names = "--track-min", defaultValue = "96M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "The working-set loop never leaves a guest less RAM (default: ${DEFAULT-VALUE}).")
  long trackMin;

  @Option(names = "--accel", defaultValue = "tcg", paramLabel = "ACCEL",
      description = "QEMU accelerator: tcg, kvm, or kvm:tcg (default: ${DEFAULT-VALUE}).")
  String accel;

  @Override
  public Integer call() throws Exception {
    vmd.requireSecurityChoice("host agent");
    ClusterTls tls = vmd.nodeTls();
    if (tls != null && tls.identity().role() != Role.HOST) {
      throw new CommandLine.ParameterException(spec.commandLine(), "node.crt in --certs-dir is a "
          + tls.identity().role().label() + "'s certificate; a host's agent needs one of role host: vmd cert "
          + "create-node NAME ADDRESS... --role host");
    }
    String host = tls != null ? tls.identity().name() : name;
    if (host == null) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--insecure: give the host's --name");
    }
    if (tls != null && name != null && !name.equals(host)) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--name " + name + ": this host's certificate "
          + "names it '" + host + "'");
    }
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    RoleMetrics.bind(registry, "host");
    int threads = Runtime.getRuntime().availableProcessors();
    // The agent acts as its node certificate (role host), under one owner id in every life.
    VmdClient client = VmdClient.connectAs(vmd.clientConfig(threads, tls), "host");
    HostAgent agent;
    MetricsEndpoint endpoint;
    try {
      agent = HostAgent.start(new HostAgent.Config(host, HostPort.parse(api), socket, tls,
          new Vmd.Version().getVersion()[0], vms.root, kernel != null ? kernel : VmDir.vmlab().resolve("vmlinuz"),
          initrd != null ? initrd : VmDir.vmlab().resolve("initrd.gz"), accel, tls == null ? null : vmd.certsDir,
          track ? WorkingSetTracker.Settings.paper(trackMin, Long.MAX_VALUE) : null), client, registry);
    } catch (IOException | RuntimeException | InterruptedException e) {
      client.close();
      throw e;
    }
    try {
      endpoint = metrics == null ? null : MetricsEndpoint.start(HostPort.parse(metrics), registry);
    } catch (IOException | RuntimeException e) {
      Foreground.closeAll(agent, client);
      throw e;
    }
    return Foreground.run("host agent '" + host + "': API on " + agent.registered().api() + ", NBD on unix:"
        + agent.socket() + " (owner id " + client.ownerId() + ")" + (endpoint == null ? ""
            : ", metrics on " + endpoint.url()),
        endpoint, agent, client);
  }

  @Command(name = "list", mixinStandardHelpOptions = true,
      description = "The cluster's hypervisor hosts: name, API address, state, the VMs each runs, and whether its "
          + "agent answers now (asked through its API, all at once, within --timeout).")
  static final class ListHosts implements Callable<Integer> {
    @ParentCommand HostCommand host;
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      Vmd vmd = host.vmd;
      try (VmdClient client = vmd.connect()) {
        List<VmMeta> vms = client.cluster().vms();
        List<HostMeta> hosts = client.cluster().hosts();
        // The control plane records membership, not liveness: each agent is asked, in parallel.
        List<CompletableFuture<String>> answers = new ArrayList<>();
        for (HostMeta h : hosts) {
          answers.add(CompletableFuture.supplyAsync(() -> agentAnswers(vmd, h)));
        }
        List<HostRow> rows = new ArrayList<>();
        for (int i = 0; i < hosts.size(); i++) {
          HostMeta h = hosts.get(i);
          long running = vms.stream().filter(v -> v.host().equals(h.name()) && v.state() != VmState.STOPPED
              && v.state() != VmState.LOST).count();
          rows.add(new HostRow(h.name(), h.api().toString(), h.status().name().toLowerCase(Locale.ROOT), running,
              answers.get(i).join()));
        }
        Output.list(spec.commandLine().getOut(), vmd.json, "hosts", rows, HostRow.class);
      }
      return 0;
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true,
      description = "Ask a host's agent, through its API, who and how it is.")
  static final class Status implements Callable<Integer> {
    @ParentCommand HostCommand host;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "The host, as vmd host list names it.") String name;

    @Override
    public Integer call() throws Exception {
      Vmd vmd = host.vmd;
      HostPort at = apiOf(vmd, name);
      HostApi.Status s = onAgent(vmd, name, at, HostApiClient::status);
      Output.one(spec.commandLine().getOut(), vmd.json, new AgentStatus(s.host(), at.toString(), s.version(), s.caller()));
      return 0;
    }
  }

  /** "up" when the host's agent answers its Status call within --timeout, else why not. */
  private static String agentAnswers(Vmd vmd, HostMeta h) {
    try (HostApiClient agent = HostApiClient.connect(h.api(), vmd.clientTls(), vmd.timeout)) {
      agent.status();
      return "up";
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode() == io.grpc.Status.Code.DEADLINE_EXCEEDED
          || e.getStatus().getCode() == io.grpc.Status.Code.UNAVAILABLE ? "unreachable"
          : e.getStatus().getCode().toString().toLowerCase(Locale.ROOT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }

  /** The API of host {@code name}, as the control plane has it; one clear error when there is none. */
  static HostPort apiOf(Vmd vmd, String name) throws Exception {
    try (VmdClient client = vmd.connect()) {
      return hostNamed(client, name).api();
    }
  }

  /**
   * The host whose agent runs VM {@code name}: host {@code host} when given; none (null) for a VM of
   * this machine's --vm-dir (vmd vm start without --host); else the host the control plane records it on.
   */
  static HostMeta agentOf(Vmd vmd, VmDir vms, String name, String host) throws Exception {
    if (host == null && vms.has(name)) {
      return null;
    }
    try (VmdClient client = vmd.connect()) {
      if (host == null) {
        VmMeta v = client.cluster().vm(name);
        if (v == null) {
          throw new IOException("no VM named '" + name + "' in " + vms.root + " nor in the cluster");
        }
        host = v.host();
      }
      return hostNamed(client, host);
    }
  }

  private static HostMeta hostNamed(VmdClient client, String name) throws Exception {
    HostMeta h = client.cluster().host(name);
    if (h == null) {
      throw new IllegalArgumentException("no host '" + name + "' in the cluster (vmd host list)");
    }
    return h;
  }

  /** Runs {@code call} against host {@code name}'s agent; its refusal as one line. */
  static <T> T onAgent(Vmd vmd, String name, AgentCall<T> call) throws Exception {
    return onAgent(vmd, name, apiOf(vmd, name), call);
  }

  /** As above, the agent's API {@code at} already looked up. */
  static <T> T onAgent(Vmd vmd, String name, HostPort at, AgentCall<T> call) throws Exception {
    try (HostApiClient agent = HostApiClient.connect(at, vmd.clientTls(), vmd.timeout)) {
      return call.apply(agent);
    } catch (StatusRuntimeException e) {
      throw new IOException("host '" + name + "': " + (e.getStatus().getDescription() == null
          ? e.getStatus().getCode().toString() : e.getStatus().getDescription()));
    }
  }

  interface AgentCall<T> {
    T apply(HostApiClient agent) throws Exception;
  }

}
