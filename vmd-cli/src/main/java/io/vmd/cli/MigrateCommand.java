package io.vmd.cli;

import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.Sizes;
import io.vmd.common.tls.CertsDir;
import io.vmd.meta.FreePorts;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.qemu.QemuMigration;
import io.vmd.migration.qemu.Qmp;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

@Command(name = "migrate", mixinStandardHelpOptions = true, description = {
    "Live-migrate a VM (vmd vm start) into another one started with --incoming on the same namespace:",
    "pre-copy, post-copy, or agile (one pre-copy pass, then post-copy). Its swapped pages stay in the",
    "namespace; only what it holds in RAM crosses the link. When the two VMs use different gateways",
    "(two hosts), the namespace changes hands at switch-over, while the source is paused: the source's",
    "gateway is fenced (its writes refused from then on) and the destination's, standing by, claims it",
    "with the guest's first write there. QEMU before 9.0 loses guest writes in pre-copy under TCG when guest",
    "RAM is a multiple of 256 KiB; vmd vm start sizes RAM around it. For such a guest pre-copy is refused and",
    "agile starts in post-copy (see --allow-tcg-pre-copy). With --certs-dir the stream runs over TLS, both QEMUs",
    "showing this host's node certificate and checking the other's against the cluster's CA."})
final class MigrateCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "NAME", description = "The running VM.") String name;

  @Option(names = "--to", required = true, paramLabel = "NAME", description = "The VM waiting with --incoming.")
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
      "Run pre-copy (or Agile's pre-copy pass) even when the guest's QEMU would lose guest writes in it (under",
      "TCG, before 9.0, RAM a multiple of 256 KiB): its memory may arrive corrupted. For measurements only."})
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
    HostPort at = HostPort.parse(listen);
    int port = at.port() != 0 ? at.port() : FreePorts.loopback(1).get(0).port();
    var out = spec.commandLine().getOut();
    long[] lastPrint = {0};
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
          .progress(m -> {
        long now = System.nanoTime();
        if (!vmd.json && now - lastPrint[0] > 1_000_000_000L) {
          lastPrint[0] = now;
          out.printf("  %s: %s sent, %s remaining%n", m.path("status").asText(),
              Sizes.format(m.path("ram").path("transferred").asLong()),
              Sizes.format(m.path("ram").path("remaining").asLong()));
          out.flush();
        }
      }).run();
      if (r.precopyPassSkipped() && !vmd.json) {
        out.println("  (this guest's QEMU would lose guest writes in pre-copy: agile started in post-copy)");
      }
      Output table = new Output("policy", "total_ms", "downtime_ms", "guest_downtime_ms", "transferred", "precopy", "postcopy",
          "downtime_bytes", "zero_pages", "postcopy_requests", "postcopy_after_ms", "swap_handover_ms");
      table.row(p.label(), r.totalMillis(), r.downtimeMillis(), r.guestDowntimeMillis(), r.transferredBytes(), r.precopyBytes(),
          r.postcopyBytes(), r.downtimeBytes(), r.zeroPages(), r.postcopyRequests(), r.postcopyAfterMillis(),
          r.switchoverMillis());
      table.print(out, vmd.json, Map.of("transferred", "size", "precopy", "size", "postcopy", "size",
          "downtime_bytes", "size"));
    }
    return 0;
  }

  /**
   * QEMU's x509 credentials for the migration stream, from this host's node certificate (node.crt in
   * --certs-dir), which both ends show and check against the cluster's CA: DIR/client for the source,
   * DIR/server for the destination, 0700. The destination's address (--listen) must be one the
   * certificate names.
   */
  private Path migrationTls(Path dir) throws IOException {
    CertsDir certs = new CertsDir(vmd.certsDir);
    for (Path p : List.of(certs.caCert(), certs.nodeCert(), certs.nodeKey())) {
      if (!Files.isReadable(p)) {
        throw new IOException("no " + p + ": a secure migration runs its stream over TLS with this host's node "
            + "certificate (vmd cert create-node HOST --role host), or say --insecure");
      }
    }
    for (String end : List.of("client", "server")) {
      Path d = dir.resolve(end);
      Files.createDirectories(d, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
      Files.copy(certs.caCert(), d.resolve("ca-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
      Files.copy(certs.nodeCert(), d.resolve(end + "-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
      Files.copy(certs.nodeKey(), d.resolve(end + "-key.pem"), StandardCopyOption.REPLACE_EXISTING);
      Files.setPosixFilePermissions(d.resolve(end + "-key.pem"), PosixFilePermissions.fromString("rw-------"));
    }
    return dir;
  }
}
