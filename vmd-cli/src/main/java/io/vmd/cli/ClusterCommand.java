package io.vmd.cli;

import io.vmd.client.ServerInfo;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.meta.Member;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.ErrorCode;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "cluster", mixinStandardHelpOptions = true, description = {
    "Membership: the servers the control plane knows. A new server joins by itself when started with",
    "--meta; drain takes new pages away from one and moves its pages off (the namespaces' owners copy",
    "them, as after a lost server); remove retires it for good."},
    subcommands = {ClusterCommand.Servers.class, ClusterCommand.Add.class, ClusterCommand.Drain.class,
      ClusterCommand.Remove.class})
final class ClusterCommand {
  @ParentCommand Vmd vmd;

  @Command(name = "servers", mixinStandardHelpOptions = true, description = "Every server: slot, id, state, memory.")
  static final class Servers implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;

    @Option(names = "--all", description = "Also servers removed from the cluster.")
    boolean all;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = cluster.vmd.connect()) {
        client.cluster().refreshAvailability();
        Output out = new Output("slot", "id", "address", "status", "state", "capacity", "used", "free", "pages");
        for (Member m : client.cluster().members()) {
          if (m.status() == ServerStatus.REMOVED && !all) {
            continue;
          }
          ServerInfo s = client.cluster().server(m.slot());
          boolean current = s != null && s.id().equals(m.id());
          var a = current ? s.availability() : null;
          out.row(m.slot(), m.id(), m.address().toString(), m.status().name().toLowerCase(Locale.ROOT),
              current && s.up() ? "up" : "down", a == null ? 0 : a.capacityBytes(), a == null ? 0 : a.usedBytes(),
              a == null ? 0 : a.freeBytes(), a == null ? 0 : a.pages());
        }
        out.print(spec.commandLine().getOut(), cluster.vmd.json,
            Map.of("capacity", "size", "used", "size", "free", "size"));
      }
      return 0;
    }
  }

  /** Names a server by slot, id or address. */
  static Member find(VmdClient client, String which) throws Exception {
    for (Member m : client.cluster().members()) {
      if (m.status() != ServerStatus.REMOVED && (String.valueOf(m.slot()).equals(which) || m.id().equals(which)
          || m.address().toString().equals(which))) {
        return m;
      }
    }
    throw new VmdException(ErrorCode.BAD_REQUEST,
        "no server '" + which + "' in the cluster (give its slot, id or address; see vmd cluster servers)");
  }

  static int setStatus(ClusterCommand cluster, CommandSpec spec, String which, ServerStatus status, boolean force)
      throws Exception {
    try (VmdClient client = cluster.vmd.connect()) {
      Member m = find(client, which);
      Member after = client.cluster().setStatus(m.slot(), status, force);
      new Output("slot", "id", "address", "status")
          .row(after.slot(), after.id(), after.address().toString(), after.status().name().toLowerCase(Locale.ROOT))
          .print(spec.commandLine().getOut(), cluster.vmd.json, Map.of());
    }
    return 0;
  }

  @Command(name = "add", mixinStandardHelpOptions = true, description = {
      "Admit a server to placement again (one that was draining, or is still joining). Servers join by",
      "themselves: start one with 'vmd server --meta ...' and clients place new pages on it at once."})
  static final class Add implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;
    @Parameters(paramLabel = "SERVER", description = "Slot, id or address.") String which;

    @Override
    public Integer call() throws Exception {
      return setStatus(cluster, spec, which, ServerStatus.ACTIVE, false);
    }
  }

  @Command(name = "drain", mixinStandardHelpOptions = true, description = {
      "Stop placing new pages on a server and move its pages off it: each namespace's owner (its gateway)",
      "copies them to other servers while I/O goes on; namespaces nobody owns are moved by this command.",
      "It waits until the server holds nothing (then remove it), or --wait runs out."})
  static final class Drain implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;
    @Parameters(paramLabel = "SERVER", description = "Slot, id or address.") String which;

    @Option(names = "--wait", defaultValue = "10m", converter = Vmd.DurationConverter.class, paramLabel = "DURATION",
        description = "How long to wait for it to empty (default: ${DEFAULT-VALUE}; 0: mark it draining and return).")
    Duration wait;

    @Override
    public Integer call() throws Exception {
      if (wait.isZero()) {
        return setStatus(cluster, spec, which, ServerStatus.DRAINING, false);
      }
      try (VmdClient client = cluster.vmd.connect()) {
        Member m = find(client, which);
        long left = client.cluster().drain(m.slot(), wait);
        new Output("slot", "id", "address", "status", "pages")
            .row(m.slot(), m.id(), m.address().toString(), "draining", left)
            .print(spec.commandLine().getOut(), cluster.vmd.json, Map.of());
        if (left > 0) {
          throw new VmdException(ErrorCode.UNAVAILABLE, "server " + m.address()
              + " still holds " + left + " pages after " + wait.toSeconds() + " s (are their owners running?)");
        }
      }
      return 0;
    }
  }

  @Command(name = "remove", mixinStandardHelpOptions = true, description = {
      "Retire a server for good. Refused while it still holds pages, unless --force: then its pages are",
      "declared lost (their other replicas are copied again; a page with no other copy reads as an error)."})
  static final class Remove implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;
    @Parameters(paramLabel = "SERVER", description = "Slot, id or address.") String which;

    @Option(names = "--force", description = "Remove it even though it holds pages (or cannot be asked).")
    boolean force;

    @Override
    public Integer call() throws Exception {
      return setStatus(cluster, spec, which, ServerStatus.REMOVED, force);
    }
  }
}
