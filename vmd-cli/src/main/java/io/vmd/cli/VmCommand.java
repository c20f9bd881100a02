package io.vmd.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmd.client.VmdClient;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.Sizes;
import io.vmd.host.HostApi;
import io.vmd.meta.HostMeta;
import io.vmd.meta.VmMeta;
import io.vmd.migration.qemu.BalloonReservation;
import io.vmd.migration.qemu.QemuVm;
import io.vmd.migration.qemu.Qmp;
import io.vmd.migration.qemu.QmpException;
import io.vmd.migration.wss.GatewayPageIns;
import io.vmd.migration.wss.WorkingSetTracker;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

@Command(name = "vm", mixinStandardHelpOptions = true, description = {
    "QEMU guests whose swap disk is a namespace: QEMU's own NBD client reaches it through a gateway. "
        + "Each VM has a directory (QMP socket, serial log, pid) under --vm-dir; the commands drive it over "
        + "QMP."},
    subcommands = {VmCommand.Start.class, VmCommand.ListVms.class, VmCommand.Stop.class, VmCommand.Balloon.class,
      VmCommand.Track.class})
final class VmCommand {
  /**
   * A VM as vmd vm list shows it ({@code {"vms":[...]}}), in each of its views: host is null for this
   * machine's own; state is QEMU's run status (this machine's, or --host's agent) or the control plane's
   * record (--all-hosts); balloon is null where the view does not know it (--all-hosts), gateway where it
   * is the agent's, target but while the VM migrates.
   */
  record VmRow(String name, String host, String state, Long memory, Long balloon, String namespace, String gateway,
      String target) {}

  @ParentCommand Vmd vmd;

  @CommandLine.Mixin VmDir vms;

  @Command(name = "start", mixinStandardHelpOptions = true,
      description = "Start a QEMU guest with its swap disk on a namespace, a balloon, a serial log and a QMP socket.")
  static final class Start implements Callable<Integer> {
    @ParentCommand VmCommand vm;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME") String name;

    @Option(names = "--host", paramLabel = "HOST",
        description = "Start it on this hypervisor host, through its agent (vmd host), from any machine of the cluster; "
            + "the agent's gateway, kernel and VM directory are used, and the control plane records where it runs.")
    String host;

    @Option(names = "--memory", defaultValue = "512M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Guest RAM (default: ${DEFAULT-VALUE}).")
    long memory;

    @Option(names = "--namespace", required = true, paramLabel = "NAMESPACE", description = "Its swap disk.")
    String namespace;

    @Option(names = "--gateway", defaultValue = "127.0.0.1:10809", paramLabel = "HOST:PORT|unix:PATH",
        description = "The NBD gateway serving the namespace: its TCP address, or unix:PATH for the Unix socket of "
            + "this host's gateway (vmd gateway --unix) (default: ${DEFAULT-VALUE}).")
    String gateway;

    @Option(names = "--incoming", description = "Wait for a migration instead of booting (QEMU -incoming defer).")
    boolean incoming;

    @Option(names = "--accel", defaultValue = "tcg", paramLabel = "ACCEL",
        description = "QEMU accelerator: tcg, kvm, or kvm:tcg (KVM when it works) (default: ${DEFAULT-VALUE}).")
    String accel;

    @Option(names = "--kernel", paramLabel = "FILE",
        description = "Guest kernel (default: vmlinuz of benchmarks/vmlab's build, $VMD_VMLAB_DIR or ~/.cache/vmd-vmlab).")
    Path kernel;

    @Option(names = "--tls-creds", paramLabel = "DIR",
        description = "Reach a gateway that requires TLS (--tls-cert, and --tls-verify-peer) with QEMU's x509 "
            + "credentials in DIR: ca-cert.pem (the CA of the gateway's certificate), and client-cert.pem and "
            + "client-key.pem (a certificate of role nbd granted the namespace: vmd ns grant).")
    Path tlsCreds;

    @Option(names = "--initrd", paramLabel = "FILE", description = "Guest initramfs (default: the vmlab build's).")
    Path initrd;

    @Option(names = "--append", paramLabel = "CMDLINE",
        defaultValue = "console=ttyS0 quiet panic=-1 vmlab.mode=vm",
        description = "Guest kernel command line (default: ${DEFAULT-VALUE}: swap on the namespace, then idle).")
    String append;

    @Override
    public Integer call() throws Exception {
      if (host != null) {
        HostApi.VmInfo v = HostCommand.onAgent(vm.vmd, host,
            a -> a.startVm(new HostApi.StartVm(name, namespace, memory, incoming, append)));
        spec.commandLine().getOut().printf("VM '%s' %s on host %s: %s of memory, swap on namespace '%s'%n", v.name(),
            v.status(), host, Sizes.format(v.memoryBytes()), v.namespace());
        return 0;
      }
      Path lab = VmDir.vmlab();
      Path k = kernel != null ? kernel : lab.resolve("vmlinuz");
      Path i = initrd != null ? initrd : lab.resolve("initrd.gz");
      for (Path f : List.of(k, i)) {
        if (!Files.isReadable(f)) {
          throw new CommandLine.ParameterException(spec.commandLine(), f + " does not exist: give --kernel and"
              + " --initrd, or build the guest with benchmarks/vmlab/build.sh");
        }
      }
      Path dir = vm.vms.of(name);
      if (vm.vms.running(name)) {
        throw new IOException("VM '" + name + "' is already running (" + dir + ")");
      }
      if (tlsCreds != null && !Files.isReadable(tlsCreds.resolve("ca-cert.pem"))) {
        throw new CommandLine.ParameterException(spec.commandLine(), tlsCreds.resolve("ca-cert.pem")
            + " does not exist: --tls-creds takes a directory with ca-cert.pem (and client-cert.pem, client-key.pem)");
      }
      QemuVm.Spec s = new QemuVm.Spec(name, memory, namespace, NbdEndpoint.parse(gateway), k, i, append, accel, incoming,
          tlsCreds);
      QemuVm started = QemuVm.start(s, dir);
      String status = started.status();
      started.qmp().close(); // QEMU runs on; later commands reach it through its socket
      spec.commandLine().getOut().printf("VM '%s' %s: %s of memory, swap on namespace '%s' via %s; files in %s%n",
          name, status, Sizes.format(memory), namespace, gateway, dir);
      return 0;
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "Every VM under --vm-dir and its state.")
  static final class ListVms implements Callable<Integer> {
    @ParentCommand VmCommand vm;
    @Spec CommandSpec spec;

    @Option(names = "--all-hosts",
        description = "Every VM the cluster's host agents run, as the control plane records them, instead of this "
            + "machine's --vm-dir.")
    boolean allHosts;

    @Option(names = "--host", paramLabel = "HOST",
        description = "The VMs a host's agent runs, as it sees them (with their balloons), instead of this machine's.")
    String host;

    @Override
    public Integer call() throws Exception {
      if (host != null) {
        List<VmRow> rows = new ArrayList<>();
        for (HostApi.VmInfo v : HostCommand.onAgent(vm.vmd, host, a -> a.listVms())) {
          rows.add(new VmRow(v.name(), host, v.status(), v.memoryBytes(), v.balloonBytes(), v.namespace(), null, null));
        }
        print(rows);
        return 0;
      }
      if (allHosts) {
        try (VmdClient client = vm.vmd.connect()) {
          List<VmRow> rows = new ArrayList<>();
          for (VmMeta v : client.cluster().vms()) {
            rows.add(new VmRow(v.name(), v.host(), v.state().name().toLowerCase(Locale.ROOT), v.memoryBytes(), null,
                v.namespace(), null, v.target()));
          }
          print(rows);
        }
        return 0;
      }
      List<VmRow> rows = new ArrayList<>();
      if (Files.isDirectory(vm.vms.root)) {
        try (Stream<Path> dirs = Files.list(vm.vms.root)) {
          for (Path d : dirs.sorted().toList()) {
            if (!Files.exists(d.resolve(QemuVm.SPEC))) {
              continue;
            }
            Properties p = vm.vms.spec(d.getFileName().toString());
            String status = "stopped";
            long balloon = 0;
            if (Files.exists(d.resolve(QemuVm.QMP))) {
              try (Qmp q = QemuVm.attach(d, p.getProperty("name"))) {
                status = q.call("query-status", null, Duration.ofSeconds(5)).path("status").asText();
                try {
                  balloon = q.call("query-balloon", null, Duration.ofSeconds(5)).path("actual").asLong();
                } catch (QmpException noBalloonYet) {
                  // the guest's balloon driver has not answered yet
                }
              } catch (IOException gone) {
                // stopped
              }
            }
            rows.add(new VmRow(p.getProperty("name"), null, status, Long.parseLong(p.getProperty("memory")), balloon,
                p.getProperty("namespace"), p.getProperty("gateway"), null));
          }
        }
      }
      print(rows);
      return 0;
    }

    private void print(List<VmRow> rows) {
      Output.list(spec.commandLine().getOut(), vm.vmd.json, "vms", rows, VmRow.class, "memory", "balloon");
    }
  }

  @Command(name = "stop", mixinStandardHelpOptions = true, description = "Quit a VM's QEMU.")
  static final class Stop implements Callable<Integer> {
    @ParentCommand VmCommand vm;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME") String name;

    @Option(names = "--host", paramLabel = "HOST", description = "The host whose agent runs it (default: the host the "
        + "control plane records, for a VM not started on this machine).")
    String host;

    @Override
    public Integer call() throws Exception {
      HostMeta agent = HostCommand.agentOf(vm.vmd, vm.vms, name, host);
      if (agent != null) {
        HostCommand.onAgent(vm.vmd, agent.name(), agent.api(), a -> a.stopVm(name));
        spec.commandLine().getOut().printf("VM '%s' stopped on host %s%n", name, agent.name());
        return 0;
      }
      try (Qmp q = vm.vms.reach(name)) {
        q.execute("quit", null);
        // QEMU closes the socket as it ends.
        q.awaitEvent("SHUTDOWN", e -> true, Duration.ofSeconds(10));
      } catch (QmpException closedFirst) {
        // it quit before saying so
      }
      spec.commandLine().getOut().printf("VM '%s' stopped%n", name);
      return 0;
    }
  }

  @Command(name = "balloon", mixinStandardHelpOptions = true,
      description = "Set a VM's memory reservation: the balloon leaves the guest SIZE of RAM.")
  static final class Balloon implements Callable<Integer> {
    @ParentCommand VmCommand vm;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME") String name;

    @Parameters(index = "1", paramLabel = "SIZE", converter = Vmd.SizeConverter.class) long size;

    @Option(names = "--host", paramLabel = "HOST", description = "The host whose agent runs it (default: the host the "
        + "control plane records, for a VM not started on this machine).")
    String host;

    @Override
    public Integer call() throws Exception {
      HostMeta agent = HostCommand.agentOf(vm.vmd, vm.vms, name, host);
      if (agent != null) {
        HostApi.VmInfo v = HostCommand.onAgent(vm.vmd, agent.name(), agent.api(), a -> a.balloonVm(name, size));
        spec.commandLine().getOut().printf("VM '%s' on host %s: balloon target %s, %s%n", name, agent.name(),
            Sizes.format(size), v.status());
        return 0;
      }
      try (Qmp q = vm.vms.reach(name)) {
        q.call("balloon", Map.of("value", size), Duration.ofSeconds(10));
        JsonNode now = q.call("query-balloon", null, Duration.ofSeconds(10));
        spec.commandLine().getOut().printf("VM '%s': balloon target %s, now %s%n", name, Sizes.format(size),
            Sizes.format(now.path("actual").asLong()));
      }
      return 0;
    }
  }

  @Command(name = "track", mixinStandardHelpOptions = true, description = {
      "Track a VM's working set and keep its balloon there (the Agile paper's loop, section IV-D): every "
          + "interval, the VM's page-ins as its gateway counts them; while they stay at or under --tau the "
          + "reservation shrinks by --alpha, above it grows by --beta. Runs until interrupted, one line per step."})
  static final class Track implements Callable<Integer> {
    @ParentCommand VmCommand vm;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME") String name;

    @Option(names = "--gateway-metrics", required = true, paramLabel = "URL",
        description = "The Prometheus endpoint of the VM's gateway, e.g. http://127.0.0.1:9100/metrics.")
    URI metrics;

    @Option(names = "--min", defaultValue = "96M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Never leave the guest less (default: ${DEFAULT-VALUE}).")
    long min;

    @Option(names = "--alpha", defaultValue = "0.95", description = "Shrink factor (default: ${DEFAULT-VALUE}).")
    double alpha;

    @Option(names = "--beta", defaultValue = "1.03", description = "Growth factor (default: ${DEFAULT-VALUE}).")
    double beta;

    @Option(names = "--tau", defaultValue = "4K", converter = Vmd.SizeConverter.class, paramLabel = "BYTES/S",
        description = "Page-in rate that means the VM needs more (default: ${DEFAULT-VALUE} per second).")
    long tau;

    @Option(names = "--interval", defaultValue = "2s", converter = Vmd.DurationConverter.class,
        description = "Step while settling (default: ${DEFAULT-VALUE}).")
    Duration interval;

    @Option(names = "--settled-interval", defaultValue = "30s", converter = Vmd.DurationConverter.class,
        description = "Step once settled (default: ${DEFAULT-VALUE}).")
    Duration settled;

    @Option(names = "--steps", defaultValue = "0", description = "Stop after this many steps (0: never).")
    int steps;

    @Override
    public Integer call() throws Exception {
      Properties p = vm.vms.spec(name);
      long memory = Long.parseLong(p.getProperty("memory"));
      String ns = p.getProperty("namespace");
      var out = spec.commandLine().getOut();
      try (Qmp q = vm.vms.reach(name)) {
        var balloon = new BalloonReservation(q, memory, Math.min(min, memory));
        var tracker = new WorkingSetTracker(new GatewayPageIns(metrics, ns),
            balloon, new WorkingSetTracker.Settings(alpha, beta, tau, interval, settled,
                Math.min(min, memory), memory));
        try {
          track(tracker, out);
        } finally {
          tracker.close();
        }
      }
      return 0;
    }

    private void track(WorkingSetTracker tracker, PrintWriter out)
        throws InterruptedException {
      for (int i = 0; steps == 0 || i < steps; i++) {
        Thread.sleep((tracker.stable() ? settled : interval).toMillis());
        try {
          long r = tracker.step();
          out.printf("VM '%s': page-ins %s/s, reservation %s%s%n", name, Sizes.format((long) tracker.lastSwapRate()),
              Sizes.format(r), tracker.stable() ? " (settled)" : "");
        } catch (UncheckedIOException | IOException e) {
          out.printf("VM '%s': no step: %s%n", name, e.getMessage());
        }
        out.flush();
      }
    }
  }
}
