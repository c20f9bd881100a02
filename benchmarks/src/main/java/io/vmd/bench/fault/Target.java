package io.vmd.bench.fault;

import io.vmd.load.Driver;
import java.util.List;
import java.util.function.LongSupplier;

/** Something the harness measures, started (and stopped) by the harness itself. */
interface Target extends AutoCloseable {
  String name();

  /** A driver for one thread of load. */
  Driver driver() throws Exception;

  /** The processes that serve this target other than the harness's own JVM (watched for CPU and pauses). */
  default List<Watched> processes() {
    return List.of();
  }

  /** The NBD URI another client (fio) attaches to, or null where the target does not speak NBD. */
  default String nbdUri() {
    return null;
  }

  /** The same through a Unix socket (nbd+unix), or null where the target serves none. */
  default String nbdUnixUri() {
    return null;
  }

  /**
   * A process the harness reads CPU time of; for JVMs also safepoint pauses and the heap bytes it has
   * allocated so far ({@code allocatedBytes}: -1 when unknown), else null.
   */
  record Watched(String name, long pid, SafepointLog safepoints, LongSupplier allocatedBytes) {
    Watched(String name, long pid, SafepointLog safepoints) {
      this(name, pid, safepoints, null);
    }
  }
}
