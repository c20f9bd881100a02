package io.vmd.bench.fault;

import io.vmd.load.Driver;
import io.vmd.load.NbdLoadClient;
import java.util.ArrayList;
import java.util.List;

/**
 * An NBD yardstick made of processes started here, each in front of the one before it: a command's
 * {@code %BEHIND%} is the port of the process started before it; clients attach to the last.
 */
record ExternalNbd(String name, List<String> names, List<ExternalProcess> started) implements Target {
  @SafeVarargs
  static ExternalNbd of(String name, List<String> names, List<String>... commands) throws Exception {
    List<ExternalProcess> started = new ArrayList<>();
    try {
      for (List<String> command : commands) {
        String behind = started.isEmpty() ? "" : String.valueOf(started.get(started.size() - 1).port);
        started.add(ExternalProcess.start(command.stream().map(a -> a.replace("%BEHIND%", behind)).toList()));
      }
      return new ExternalNbd(name, names, started);
    } catch (Exception e) {
      new ExternalNbd(name, names, started).close();
      throw e;
    }
  }

  private int port() {
    return started.get(started.size() - 1).port;
  }

  @Override
  public Driver driver() throws Exception {
    return new NbdLoadClient("127.0.0.1", port(), "");
  }

  @Override
  public String nbdUri() {
    return "nbd://127.0.0.1:" + port() + "/";
  }

  @Override
  public List<Watched> processes() {
    List<Watched> watched = new ArrayList<>();
    for (int i = 0; i < started.size(); i++) {
      watched.add(new Watched(names.get(i), started.get(i).pid(), null));
    }
    return watched;
  }

  /** Front first, so that no process loses what is behind it while a client is attached. */
  @Override
  public void close() throws Exception {
    Exception first = null;
    for (int i = started.size() - 1; i >= 0; i--) {
      try {
        started.get(i).close();
      } catch (Exception e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
