package io.vmd.load;

import java.util.SplittableRandom;

/**
 * The load loop every driver shares: keep a workload's queue depth of requests in flight until the
 * time (or, for a fill, the byte count) is up, and record each request from issue to completion. A
 * driver says only how to issue one request and how to wait for one to finish.
 */
public abstract class WindowedDriver implements Driver {
  private static final Workload FILL = new Workload("fill", "fill", 1 << 20, 8, 0, true);

  /** Starts a request in {@code slot}: read or write {@code w.blockSize()} bytes at {@code offset}. */
  protected abstract void issue(Workload w, int slot, long offset, boolean read) throws Exception;

  /** Pushes out what {@link #issue} buffered; called before waiting. */
  protected void flush() throws Exception {}

  /** Waits until one request has finished and returns its slot; throws if it failed. */
  protected abstract int awaitOne(Workload w) throws Exception;

  /** When the request in {@code slot} finished; by default, now. */
  protected long finishedAt(int slot) {
    return System.nanoTime();
  }

  /** Per-run setup and teardown (buffers sized to the workload). */
  protected void begin(Workload w) {}

  protected void end(Workload w) {}

  @Override
  public void fill(long bytes) throws Exception {
    run(FILL, bytes, Long.MAX_VALUE, bytes);
  }

  @Override
  public Result run(Workload w, long region, long nanos) throws Exception {
    return run(w, region, nanos, Long.MAX_VALUE);
  }

  private Result run(Workload w, long region, long nanos, long maxBytes) throws Exception {
    Result r = new Result();
    int qd = w.queueDepth();
    long[] sentAt = new long[qd];
    int[] free = new int[qd];
    int nfree = qd;
    for (int i = 0; i < qd; i++) {
      free[i] = i;
    }
    SplittableRandom random = new SplittableRandom(42);
    long blocks = region / w.blockSize();
    long next = 0;
    long issued = 0;
    int inFlight = 0;
    boolean stop = false;
    begin(w);
    try {
      long start = System.nanoTime();
      long deadline = start + Math.min(nanos, Long.MAX_VALUE / 4); // "until done" must not overflow
      while (true) {
        while (!stop && nfree > 0) {
          int slot = free[--nfree];
          long block = w.sequential() ? next++ % blocks : random.nextLong(blocks);
          boolean read = random.nextInt(100) < w.readPercent();
          sentAt[slot] = System.nanoTime();
          issue(w, slot, block * w.blockSize(), read);
          inFlight++;
          issued += w.blockSize();
          stop = issued >= maxBytes;
        }
        flush();
        if (inFlight == 0) {
          break;
        }
        int slot = awaitOne(w);
        r.latencyNanos.recordValue(finishedAt(slot) - sentAt[slot]);
        r.operations++;
        r.bytes += w.blockSize();
        inFlight--;
        free[nfree++] = slot;
        if (System.nanoTime() >= deadline) {
          stop = true;
        }
      }
      r.elapsedNanos = System.nanoTime() - start;
      return r;
    } finally {
      end(w);
    }
  }
}
