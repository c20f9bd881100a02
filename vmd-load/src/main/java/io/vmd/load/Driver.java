package io.vmd.load;

/** Issues the requests of a workload against one target; one driver runs on one thread. */
public interface Driver extends AutoCloseable {

  /** Writes the whole region once, so that reads fetch real pages. */
  void fill(long bytes) throws Exception;

  /** Runs the workload for {@code nanos} over [0, region) and records each request's latency. */
  Result run(Workload w, long region, long nanos) throws Exception;

  @Override
  void close() throws Exception;
}
