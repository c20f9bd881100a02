package io.vmd.cli;

import io.vmd.common.lab.EmulatedHosts;
import io.vmd.migration.model.Bandwidth;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "lab", mixinStandardHelpOptions = true,
    description = "A test lab on this machine: hosts emulated as network namespaces (root only).",
    subcommands = {LabCommand.Hosts.class})
final class LabCommand {
  /** An emulated host of the lab. */
  record LabHost(String host, String namespace, String address) {}

  @ParentCommand Vmd vmd;

  @Command(name = "hosts", mixinStandardHelpOptions = true, description = "Emulated hosts: each a network namespace "
      + "with its own address on a bridge, its link capped by the kernel (tc tbf, both ways). Run a role inside host i "
      + "with: ip netns exec vmd-LAB-hI vmd ... The tests make their own labs; this reproduces one by hand.",
      subcommands = {Up.class, Down.class})
  static final class Hosts {
    @ParentCommand LabCommand lab;
  }

  @Command(name = "up", mixinStandardHelpOptions = true, description = "Make N hosts (they stay until down).")
  static final class Up implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "N", description = "How many hosts (1..250).") int count;

    @Option(names = "--lab", defaultValue = "lab", paramLabel = "NAME",
        description = "The lab's name: up to 6 lower-case letters or digits (default: ${DEFAULT-VALUE}).")
    String name;

    @Option(names = "--link", paramLabel = "RATE",
        description = "Cap every host's link each way, e.g. 1Gbit or 100Mbit (default: uncapped).")
    String link;

    @Option(names = "--subnet", defaultValue = "10.231.0", paramLabel = "A.B.C",
        description = "The hosts' /24: host i is A.B.C.i, the bridge A.B.C.254 (default: ${DEFAULT-VALUE}).")
    String subnet;

    @Override
    public Integer call() throws Exception {
      EmulatedHosts.Builder b;
      try {
        b = EmulatedHosts.builder(name).hosts(count).subnet(subnet)
            .link(link == null ? 0 : (long) (Bandwidth.parse(link) * 8));
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
      }
      EmulatedHosts hosts = b.up(); // left up: "down" removes it
      List<LabHost> rows = new ArrayList<>();
      for (int i = 1; i <= count; i++) {
        rows.add(new LabHost("h" + i, hosts.namespaces().get(i - 1), hosts.address(i)));
      }
      Output.list(spec.commandLine().getOut(), false, "hosts", rows, LabHost.class);
      return 0;
    }
  }

  @Command(name = "down", mixinStandardHelpOptions = true, description = "Remove a lab's hosts and bridge.")
  static final class Down implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--lab", defaultValue = "lab", paramLabel = "NAME", description = "Which lab (default: ${DEFAULT-VALUE}).")
    String name;

    @Override
    public Integer call() throws Exception {
      int removed = EmulatedHosts.down(name, 250);
      spec.commandLine().getOut().printf("lab '%s': %d hosts removed%n", name, removed);
      return 0;
    }
  }
}
