package io.vmd.bench.fault;

/** Something the harness measures, started (and stopped) by the harness itself. */
interface Target extends AutoCloseable {
  String name();

  /** A driver for one thread of load. */
  Driver driver() throws Exception;
}
