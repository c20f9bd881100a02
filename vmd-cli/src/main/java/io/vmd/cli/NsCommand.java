package io.vmd.cli;

import io.vmd.client.ServerUsage;
import io.vmd.client.VmdClient;
import io.vmd.protocol.NamespaceRecord;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "ns", mixinStandardHelpOptions = true, description = "Administer namespaces (per-VM swap devices).",
    subcommands = {NsCommand.Create.class, NsCommand.ListCmd.class, NsCommand.Info.class, NsCommand.Attach.class,
      NsCommand.Delete.class})
final class NsCommand {
  @ParentCommand Vmd vmd;

  private static final Map<String, String> SIZES = Map.of("size", "size", "bytes", "size");

  @Command(name = "create", mixinStandardHelpOptions = true, description = "Create a namespace on every server.")
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
        int r0 = replicas != null ? replicas : Math.min(2, client.servers().length);
        NamespaceRecord r = client.createNamespace(name, size, r0);
        row(r).print(spec.commandLine().getOut(), ns.vmd.json, SIZES);
      }
      return 0;
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "List every namespace.")
  static final class ListCmd implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        Output out = new Output("name", "id", "size", "replicas", "epoch");
        for (NamespaceRecord r : client.listNamespaces()) {
          out.row(r.name(), r.id(), r.sizeBytes(), r.replicas(), r.epoch());
        }
        out.print(spec.commandLine().getOut(), ns.vmd.json, SIZES);
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
        NamespaceRecord r = client.namespace(name);
        Output out = new Output("namespace", "server", "state", "pages", "bytes");
        long pages = 0;
        for (ServerUsage u : client.namespaceUsage(r)) {
          out.row(r.name(), u.server().toString(), u.up() ? "up" : "down", u.pages(), u.bytes());
          pages += u.pages();
        }
        var w = spec.commandLine().getOut();
        if (!ns.vmd.json) {
          long[] copies = replication(client, r);
          w.printf("namespace %s: id %d, size %s, %d replica(s), epoch %d, %d page copies stored%n", r.name(),
              r.id(), io.vmd.common.Sizes.format(r.sizeBytes()), r.replicas(), r.epoch(), pages);
          w.printf("%d pages stored, %d under-replicated (fewer than %d copies on live servers), %d with no live copy%n",
              copies[0], copies[1], r.replicas(), copies[2]);
        }
        out.print(w, ns.vmd.json, SIZES);
      }
      return 0;
    }
  }

  /** Pages stored, pages with fewer live copies than the replica count, pages with none. */
  static long[] replication(VmdClient client, NamespaceRecord r) throws Exception {
    io.vmd.client.Namespace n = client.attach(r.name(), false);
    long stored = 0;
    long under = 0;
    long lost = 0;
    for (long p = 0; p < n.pages(); p++) {
      if (!n.locations().stored(p)) {
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
      "Take a namespace over for writing: raise its epoch on every server, so that whoever wrote it",
      "before (a gateway on a migration's source, a gateway believed dead) is refused from now on.",
      "A gateway that then opens the export takes it over again the same way."})
  static final class Attach implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        io.vmd.client.Namespace n = client.attach(name, true);
        row(n.record()).print(spec.commandLine().getOut(), ns.vmd.json, SIZES);
      }
      return 0;
    }
  }

  @Command(name = "delete", mixinStandardHelpOptions = true, description = "Delete a namespace and its pages everywhere.")
  static final class Delete implements Callable<Integer> {
    @ParentCommand NsCommand ns;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME") String name;

    @Override
    public Integer call() throws Exception {
      try (VmdClient client = ns.vmd.connect()) {
        client.deleteNamespace(name);
        if (ns.vmd.json) {
          spec.commandLine().getOut().println("{\"deleted\":" + Output.quote(name) + "}");
        } else {
          spec.commandLine().getOut().println("deleted namespace " + name);
        }
        spec.commandLine().getOut().flush();
      }
      return 0;
    }
  }

  static Output row(NamespaceRecord r) {
    return new Output("name", "id", "size", "replicas", "epoch")
        .row(r.name(), r.id(), r.sizeBytes(), r.replicas(), r.epoch());
  }
}
