package io.vmd.cli;

import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.Sizes;
import io.vmd.common.tls.CertsDir;
import io.vmd.host.HostApi;
import io.vmd.meta.FreePorts;
import io.vmd.meta.HostMeta;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.qemu.QemuMigration;
import io.vmd.migration.qemu.QemuTlsFiles;
import io.vmd.migration.qemu.Qmp;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

// One string per paragraph: picocli wraps it to the terminal.
@Command(name = "migrate", mixinStandardHelpOptions = true, description = {
    "Live-migrate a VM: pre-copy, post-copy, or agile (one pre-copy pass, then post-copy). Its swapped pages stay "
        + "in its namespace; only what it holds in RAM crosses the link. Progress goes to stderr, the result to "
        + "stdout (a table, or --json).",
    "Between hosts: for a VM a host's agent runs (vmd vm start --host), --to names the destination host, and this "
        + "command may run on any machine of the cluster. The source's agent asks the destination's for a QEMU "
        + "waiting on its own gateway, sends the guest over TLS with both hosts' node certificates, and at "
        + "switch-over, while the guest is paused, fences its gateway off the namespace; the destination's "
        + "gateway takes it with the guest's first write there. The control plane records the VM on the "
        + "destination once it has all of it. A migration that fails, times out or is interrupted (Ctrl-C) "
        + "before switch-over leaves the VM running on its host; one that fails after it reports the VM lost, "
        + "and it is never resumed twice.",
    "On one machine: for a VM started here with vmd vm start, --to names a VM started with --incoming on the same "
        + "namespace; with two gateways the namespace changes hands at switch-over as above.",
    "QEMU before 9.0 loses guest writes in pre-copy under TCG when guest RAM is a multiple of 256 KiB; VMD sizes RAM "
        + "around it. For such a guest pre-copy is refused and agile starts in post-copy (see --allow-tcg-pre-copy)."})
final class MigrateCommand implements Callable<Integer> {
  /**
   * What a migration did (one object): times in ms (-1: not measured), bytes by phase, QEMU's post-copy
   * page requests, and how long the namespace's hand-over took inside the downtime (swap_handover_ms).
   */
  record Migrated(String policy, long totalMs, long downtimeMs, long guestDowntimeMs, long transferred,
      long precopy, long postcopy, long downtimeBytes, long zeroPages, long postcopyRequests, long postcopyAfterMs,
      long swapHandoverMs) {}

  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "NAME", description = "The running VM.") String name;

  @Option(names = "--to", required = true, paramLabel = "HOST|VM",
      description = "The destination host (a VM of a host's agent), or the VM waiting with --incoming (a VM of this machine).")
  String to;

  @Option(names = "--policy", defaultValue = "agile", paramLabel = "POLICY",
      description = "pre-copy, post-copy or agile (default: ${DEFAULT-VALUE}).")
  String policy;

  @Option(names = "--bandwidth", defaultValue = "1Gbit", paramLabel = "RATE",
      description = "The link: 1Gbit, 100Mbit/s or 125MB/s, as every bandwidth option takes it (default: ${DEFAULT-VALUE}).")
  String bandwidth;

  @Option(names = "--listen", defaultValue = "127.0.0.1:0", paramLabel = "HOST:PORT",
      description = "Where the destination QEMU listens for the migration stream (port 0: any free one).")
  String listen;

  @CommandLine.Mixin VmDir vms;

  @Option(names = "--allow-tcg-pre-copy", description = {
      "Run pre-copy (or Agile's pre-copy pass) even when the guest's QEMU would lose guest writes in it "
          + "(under TCG, before 9.0, RAM a multiple of 256 KiB): its memory may arrive corrupted. For "
          + "measurements only."})
  boolean allowTcgPreCopy;

  @Option(names = "--migration-timeout", defaultValue = "10m", converter = Vmd.DurationConverter.class,
      paramLabel = "DURATION",
      description = "Give up (and cancel) after this long (default: ${DEFAULT-VALUE}).")
  Duration timeout;

  @Override
  public Integer call() throws Exception {
    QemuMigration.Policy p;
    long rate;
    try {
      p = QemuMigration.Policy.parse(policy);
      rate = (long) Bandwidth.parse(bandwidth);
    } catch (IllegalArgumentException e) {
      throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }
    HostMeta agent = HostCommand.agentOf(vmd, vms, name, null);
    if (agent != null) {
      return betweenHosts(agent, p, rate);
    }
    HostPort at = HostPort.parse(listen);
    int port = at.port() != 0 ? at.port() : FreePorts.loopback(1).get(0).port();
    Properties from = vms.spec(name);
    Properties into = vms.spec(to);
    String ns = from.getProperty("namespace");
    if (!ns.equals(into.getProperty("namespace"))) {
      throw new CommandLine.ParameterException(spec.commandLine(), "VM '" + to + "' swaps on namespace '"
          + into.getProperty("namespace") + "', VM '" + name + "' on '" + ns + "': start the destination with "
          + "--namespace " + ns);
    }
    boolean handOver = !from.getProperty("gateway").equals(into.getProperty("gateway"));
    Path tlsDir = vmd.insecure || vmd.noCertificates() ? null : migrationTls(vms.of(name).resolve("migration-tls"));
    // Connected before the migration starts: the switch-over itself is two control-plane writes.
    try (VmdClient client = handOver ? vmd.connect() : null;
         Qmp source = vms.reach(name); Qmp dest = vms.reach(to)) {
      QemuMigration.SwitchOver fence = handOver ? () -> client.namespaces().fence(ns) : null;
      QemuMigration.Result r = QemuMigration.newBuilder(source, dest).policy(p).to(at.host(), port).bandwidth(rate)
          .timeout(timeout).switchOver(fence).allowTcgPreCopy(allowTcgPreCopy)
          .tls(tlsDir == null ? null : tlsDir.resolve("client"), tlsDir == null ? null : tlsDir.resolve("server"))
          .progress(m -> progress(m.path("status").asText(), m.path("ram").path("transferred").asLong(),
              m.path("ram").path("remaining").asLong())).run();
      print(r);
    }
    return 0;
  }

  private long lastProgress;

  /** A progress line on stderr, at most one a second. */
  private void progress(String status, long transferred, long remaining) {
    long now = System.nanoTime();
    if (now - lastProgress > 1_000_000_000L) {
      lastProgress = now;
      var err = spec.commandLine().getErr();
      err.printf("  %s: %s sent, %s remaining%n", status, Sizes.format(transferred), Sizes.format(remaining));
      err.flush();
    }
  }

  /** A VM of {@code source}'s agent, to host {@code to}: the agent drives the migration, this command watches. */
  private int betweenHosts(HostMeta source, QemuMigration.Policy p, long rate) throws Exception {
    spec.commandLine().getErr().printf("migrating VM '%s' from host %s to host %s (%s)%n", name, source.name(), to,
        p.label());
    QemuMigration.Result r = HostCommand.onAgent(vmd, source.name(), source.api(), a -> a.migrate(
        new HostApi.Migrate(name, to, p.label(), rate, timeout.toMillis()),
        u -> progress(u.status(), u.transferredBytes(), u.remainingBytes())));
    print(r);
    return 0;
  }

  private void print(QemuMigration.Result r) {
    if (r.precopyPassSkipped()) {
      spec.commandLine().getErr().println("  (this guest's QEMU would lose guest writes in pre-copy: agile started in "
          + "post-copy)");
    }
    Output.one(spec.commandLine().getOut(), vmd.json, new Migrated(r.policy().label(), r.totalMillis(),
        r.downtimeMillis(), r.guestDowntimeMillis(), r.transferredBytes(), r.precopyBytes(), r.postcopyBytes(),
        r.downtimeBytes(), r.zeroPages(), r.postcopyRequests(), r.postcopyAfterMillis(), r.switchoverMillis()),
        "transferred", "precopy", "postcopy", "downtime_bytes");
  }

  /**
   * QEMU's x509 credentials for the migration stream, from this host's node certificate (node.crt in
   * --certs-dir), which both ends show and check against the cluster's CA: DIR/client for the source,
   * DIR/server for the destination. The destination's address (--listen) must be one the certificate
   * names.
   */
  private Path migrationTls(Path dir) throws IOException {
    CertsDir certs = new CertsDir(vmd.certsDir);
    for (String end : List.of("client", "server")) {
      QemuTlsFiles.write(dir.resolve(end), end, certs.caCert(), certs.nodeCert(), certs.nodeKey());
    }
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    return dir;
  }
}
