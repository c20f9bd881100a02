package io.vmd.cli;

import io.vmd.client.ServerInfo;
import io.vmd.client.VmdClient;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "servers", mixinStandardHelpOptions = true,
    description = "Show each server's capacity, used and free memory.")
final class ServersCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    try (VmdClient client = vmd.connect()) {
      Output out = new Output("server", "state", "capacity", "used", "free", "pages");
      for (ServerInfo s : client.cluster().refreshAvailability()) {
        var a = s.availability();
        out.row(s.address().toString(), s.up() ? "up" : "down", a.capacityBytes(), a.usedBytes(),
            a.freeBytes(), a.pages());
      }
      out.print(spec.commandLine().getOut(), vmd.json,
          Map.of("capacity", "size", "used", "size", "free", "size"));
    }
    return 0;
  }
}
