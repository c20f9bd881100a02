package io.vmd.cli;

import io.vmd.client.ServerInfo;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.meta.Member;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.ErrorCode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "cluster", mixinStandardHelpOptions = true, description = {
    "Membership: the servers the control plane knows. A new server joins by itself when started with "
        + "--meta; drain takes new pages away from one and moves its pages off (the namespaces' owners copy "
        + "them, as after a lost server); remove retires it for good."},
    subcommands = {ClusterCommand.Servers.class, ClusterCommand.Add.class, ClusterCommand.Drain.class,
      ClusterCommand.Remove.class})
final class ClusterCommand {
  /**
   * A server as vmd cluster servers (and vmd servers) shows it ({@code {"servers":[...]}}): status is the
   * control plane's (joining, active, draining, removed), state whether it answers now (up, down).
   */
  record ServerRow(int slot, String id, String address, String status, String state, long capacity, long used,
      long free, long pages) {}

  /** What cluster add, drain and remove did to a server; pages: what it still holds (drain). */
  record ServerChange(int slot, String id, String address, String status, Long pages) {}

  @ParentCommand Vmd vmd;

  @Command(name = "servers", mixinStandardHelpOptions = true, description = "Every server: slot, id, state, memory.")
  static final class Servers implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;

    @Option(names = "--all", description = "Also servers removed from the cluster.")
    boolean all;

    @Override
    public Integer call() throws Exception {
      return print(cluster.vmd, all, spec.commandLine().getOut());
    }

    /** The table (or JSON) of both {@code vmd cluster servers} and its alias {@code vmd servers}. */
    static int print(Vmd vmd, boolean all, java.io.PrintWriter w) throws Exception {
      try (VmdClient client = vmd.connect()) {
        client.cluster().refreshAvailability();
        List<ServerRow> rows = new ArrayList<>();
        for (Member m : client.cluster().members()) {
          if (m.status() == ServerStatus.REMOVED && !all) {
            continue;
          }
          ServerInfo s = client.cluster().server(m.slot());
          boolean current = s != null && s.id().equals(m.id());
          var a = current ? s.availability() : null;
          rows.add(new ServerRow(m.slot(), m.id(), m.address().toString(), m.status().name().toLowerCase(Locale.ROOT),
              current && s.up() ? "up" : "down", a == null ? 0 : a.capacityBytes(), a == null ? 0 : a.usedBytes(),
              a == null ? 0 : a.freeBytes(), a == null ? 0 : a.pages()));
        }
        Output.list(w, vmd.json, "servers", rows, ServerRow.class, "capacity", "used", "free");
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
      Output.one(spec.commandLine().getOut(), cluster.vmd.json, new ServerChange(after.slot(), after.id(),
          after.address().toString(), after.status().name().toLowerCase(Locale.ROOT), null));
    }
    return 0;
  }

  @Command(name = "add", mixinStandardHelpOptions = true, description = {
      "Admit a server to placement again (one that was draining, or is still joining). Servers join by "
          + "themselves: start one with 'vmd server --meta ...' and clients place new pages on it at once."})
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
      "Stop placing new pages on a server and move its pages off it: each namespace's owner (its gateway) "
          + "copies them to other servers while I/O goes on; namespaces nobody owns are moved by this command. "
          + "It waits until the server holds nothing (then remove it), or --wait runs out, and shows its "
          + "progress on stderr (pages left, every few seconds) when stderr is a terminal or --progress is given."})
  static final class Drain implements Callable<Integer> {
    @ParentCommand ClusterCommand cluster;
    @Spec CommandSpec spec;
    @Parameters(paramLabel = "SERVER", description = "Slot, id or address.") String which;

    @Option(names = "--wait", defaultValue = "10m", converter = Vmd.DurationConverter.class, paramLabel = "DURATION",
        description = "How long to wait for it to empty (default: ${DEFAULT-VALUE}; 0: mark it draining and return).")
    Duration wait;

    @Option(names = "--progress", negatable = true,
        description = "Show the pages it still holds on stderr every 2 s (default: when there is a terminal).")
    Boolean progress;

    @Override
    public Integer call() throws Exception {
      if (wait.isZero()) {
        return setStatus(cluster, spec, which, ServerStatus.DRAINING, false);
      }
      try (VmdClient client = cluster.vmd.connect()) {
        Member m = find(client, which);
        java.io.PrintWriter err = spec.commandLine().getErr();
        boolean show = progress != null ? progress : System.console() != null;
        long start = System.nanoTime();
        long[] lastShown = {start - 2_000_000_000L};
        long left = client.cluster().drain(m.slot(), wait, held -> {
          long now = System.nanoTime();
          if (show && (now - lastShown[0] >= 2_000_000_000L || held == 0)) {
            lastShown[0] = now;
            err.printf(Locale.ROOT, "draining %s: %d pages left after %.0f s%n", m.address(), held, (now - start) / 1e9);
            err.flush();
          }
        });
        Output.one(spec.commandLine().getOut(), cluster.vmd.json, new ServerChange(m.slot(), m.id(),
            m.address().toString(), "draining", left));
        if (left > 0) {
          throw new VmdException(ErrorCode.UNAVAILABLE, "server " + m.address()
              + " still holds " + left + " pages after " + wait.toSeconds() + " s (are their owners running?)");
        }
      }
      return 0;
    }
  }

  @Command(name = "remove", mixinStandardHelpOptions = true, description = {
      "Retire a server for good. Refused while it still holds pages, unless --force: then its pages are "
          + "declared lost (their other replicas are copied again; a page with no other copy reads as an error)."})
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
