package io.vmd.cli;

import io.vmd.client.Namespace;
import io.vmd.client.ServerUsage;
import io.vmd.client.VmdClient;
import io.vmd.common.Sizes;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.NamespaceRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "ns", mixinStandardHelpOptions = true, description = "Administer namespaces (per-VM swap devices).",
    subcommands = {NsCommand.Create.class, NsCommand.ListCmd.class, NsCommand.Info.class, NsCommand.Attach.class,
      NsCommand.Delete.class, NsCommand.Grant.class, NsCommand.Revoke.class})
final class NsCommand {
  @ParentCommand Vmd vmd;

  /**
   * A namespace as ns create, list and attach show it ({@code {"namespaces":[...]}} for list, the object
   * alone for the others); owner is null when nobody owns it.
   */
  record NamespaceRow(String name, int id, long size, int replicas, long epoch, String owner, int servers,
      boolean sealed, List<String> grants) {
    static NamespaceRow of(NamespaceMeta m) {
      return new NamespaceRow(m.name(), m.id(), m.sizeBytes(), m.replicas(), m.epoch(), m.hasOwner() ? m.owner() : null,
          m.servers().length, m.sealed(), m.grants());
    }
  }

  /** ns info: the namespace, how well its pages are replicated, and what each server holds of it. */
  record NamespaceInfo(String name, int id, long size, int replicas, long epoch, String owner, long pagesStored,
      long pageCopies, long underReplicated, long noLiveCopy, List<ServerPages> servers) {}

  /** One server's share of a namespace. */
  record ServerPages(String server, String state, long pages, long bytes) {}

  /** ns grant and revoke: the NBD clients the namespace is granted to now. */
  record Grants(String name, List<String> grants) {}

  /** ns delete. */
  record Deleted(String deleted) {}

  @Command(name = "create", mixinStandardHelpOptions = true,
      description = "Create a namespace (in the control plane, with an id never used before).")
  static final class Create implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Option(names = "--size", required = true, converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
        description = "Size of the device (K, M, G, T suffixes; a multiple of 4K).")
    long size;

    @Option(names = "--replicas", paramLabel = "R",
        description = "Copies of each page, on distinct servers (default: 2 with two or more servers, else 1).")
    Integer replicas;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        int r0 = replicas != null ? replicas : Math.min(2, client.cluster().servers().size());
        NamespaceMeta m = client.namespaces().create(name, size, r0);
        Output.one(spec.commandLine().getOut(), ns.vmd.json, NamespaceRow.of(m), "size");
      }
      return 0;
    }
  }

  @Command(name = "grant", mixinStandardHelpOptions = true, description = {
      "Let an NBD client open the namespace through gateways run with --tls-verify-peer: CLIENT is the name "
          + "of its certificate (vmd cert create-client CLIENT --role nbd). Admins open every namespace."})
  static final class Grant implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Parameters(index = "1", paramLabel = "CLIENT") String client;

    @Override
    public Integer call() throws Exception {
      return ns.grant(spec, name, client, true);
    }
  }

  @Command(name = "revoke", mixinStandardHelpOptions = true,
      description = "Take an NBD client's grant of the namespace away: it can no longer open it (open connections stay).")
  static final class Revoke implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;
    @Parameters(index = "0", paramLabel = "NAME") String name;
    @Parameters(index = "1", paramLabel = "CLIENT") String client;

    @Override
    public Integer call() throws Exception {
      return ns.grant(spec, name, client, false);
    }
  }

  int grant(CommandSpec spec, String name, String client, boolean grant) throws Exception {
    try (VmdClient c = vmd.connect()) {
      NamespaceMeta m = c.namespaces().grant(name, client, grant);
      Output.one(spec.commandLine().getOut(), vmd.json, new Grants(m.name(), m.grants()));
    }
    return 0;
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "List every namespace.")
  static final class ListCmd implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        List<NamespaceRow> rows = client.namespaces().list().stream().map(NamespaceRow::of).toList();
        Output.list(spec.commandLine().getOut(), ns.vmd.json, "namespaces", rows, NamespaceRow.class, "size");
      }
      return 0;
    }
  }

  @Command(name = "info", mixinStandardHelpOptions = true, description = "Show a namespace's pages and bytes on each server.")
  static final class Info implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        NamespaceMeta m = client.namespaces().get(name);
        NamespaceRecord r = m.record();
        List<ServerPages> servers = new ArrayList<>();
        long pages = 0;
        for (ServerUsage u : client.namespaces().usage(m)) {
          servers.add(new ServerPages(u.server().toString(), u.up() ? "up" : "down", u.pages(), u.bytes()));
          pages += u.pages();
        }
        long[] copies = replication(client, r);
        NamespaceInfo info = new NamespaceInfo(r.name(), r.id(), r.sizeBytes(), r.replicas(), r.epoch(),
            m.hasOwner() ? m.owner() : null, copies[0], pages, copies[1], copies[2], servers);
        var w = spec.commandLine().getOut();
        if (ns.vmd.json) {
          w.println(Output.write(info));
          w.flush();
          return 0;
        }
        w.printf("namespace %s: id %d, size %s, %d replica(s), epoch %d, owner %s, %d page copies stored%n", r.name(),
            r.id(), Sizes.format(r.sizeBytes()), r.replicas(), r.epoch(), m.hasOwner() ? m.owner() : "none", pages);
        w.printf("%d pages stored, %d under-replicated (fewer than %d copies on live servers), %d with no live copy%n",
            copies[0], copies[1], r.replicas(), copies[2]);
        Output.table(w, ServerPages.class, servers, Set.of("bytes"));
        w.flush();
      }
      return 0;
    }
  }

  /** Pages stored, pages with fewer live copies than the replica count, pages with none. */
  static long[] replication(VmdClient client, NamespaceRecord r) throws Exception {
    Namespace n = client.attach(r.name(), false);
    long stored = 0;
    long under = 0;
    long lost = 0;
    for (long p = 0; p < n.pages(); p++) {
      if (!n.stored(p)) {
        continue;
      }
      stored++;
      int live = n.liveCopies(p);
      if (live < r.replicas()) {
        under++;
      }
      if (live == 0) {
        lost++;
      }
    }
    return new long[] {stored, under, lost};
  }

  @Command(name = "attach", mixinStandardHelpOptions = true, description = {
      "Hand a namespace over: make --owner (a gateway's or client's owner id, as 'vmd ns list' shows it) "
          + "its writer at a new epoch, so that whoever wrote it before (a gateway on a migration's source, a "
          + "gateway believed dead) is refused from now on. Without --owner nobody owns it afterwards, and the "
          + "next gateway to open the export takes it."})
  static final class Attach implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Option(names = "--owner", paramLabel = "ID", description = "The new owner (default: none, the next opener).")
    String owner;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        NamespaceMeta n;
        if (owner != null) {
          n = client.namespaces().handOff(name, owner);
        } else {
          Namespace taken = client.attach(name, VmdClient.Access.TAKE_OVER);
          taken.release();
          n = client.namespaces().get(name);
        }
        Output.one(spec.commandLine().getOut(), ns.vmd.json, NamespaceRow.of(n), "size");
      }
      return 0;
    }
  }

  @Command(name = "delete", mixinStandardHelpOptions = true, description = {
      "Delete a namespace and its pages everywhere (a server that is down now drops them when it is back).",
      "Its id is never given to another namespace."})
  static final class Delete implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Option(names = "--force", description = "Delete it even while an owner holds a live lease (its VM loses its swap).")
    boolean force;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        client.namespaces().delete(name, force);
        if (ns.vmd.json) {
          spec.commandLine().getOut().println(Output.write(new Deleted(name)));
        } else {
          spec.commandLine().getOut().println("deleted namespace " + name);
        }
        spec.commandLine().getOut().flush();
      }
      return 0;
    }
  }
}
