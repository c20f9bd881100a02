package io.vmd.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code vmd servers}: the older name of {@code vmd cluster servers}, kept as an open alias for scripts. */
@Command(name = "servers", mixinStandardHelpOptions = true,
    description = "An alias of 'vmd cluster servers' (the same table and JSON), kept for scripts that use it.")
final class ServersCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Option(names = "--all", description = "Also servers removed from the cluster.")
  boolean all;

  @Override
  public Integer call() throws Exception {
    return ClusterCommand.Servers.print(vmd, all, spec.commandLine().getOut());
  }
}
