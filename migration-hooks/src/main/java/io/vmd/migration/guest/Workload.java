package io.vmd.migration.guest;

import io.vmd.client.VmdException;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A program running inside an emulated guest, on its own thread. It paces itself to a target rate of
 * operations; an operation that faults (a swap-in, a page still at the migration's source) delays
 * those behind it, which is how migration shows in its throughput. It keeps the version of every
 * page it wrote: that state moves with the VM, and lets anyone check every byte of the guest. Pausing
 * stops it at an operation boundary (a VM stopped for switch-over); resuming may hand it another guest.
 */
public abstract class Workload implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Workload.class);
  /** Throughput is recorded per bucket of this many milliseconds. */
  public static final int BUCKET_MILLIS = 100;
  private static final int MAX_BUCKETS = 36_000;

  protected final long[] versions;
  private final double opsPerSecond;
  private final AtomicLongArray buckets = new AtomicLongArray(MAX_BUCKETS);
  private final Object pauseLock = new Object();
  private volatile EmulatedGuest guest;
  private volatile boolean pauseRequested;
  private boolean paused;
  private volatile boolean stop;
  private volatile long startNanos;
  private volatile Throwable failure;
  private volatile long ops;
  private volatile long corruptReads;
  private Thread thread;

  protected Workload(int pages, double opsPerSecond) {
    this.versions = new long[pages];
    this.opsPerSecond = opsPerSecond;
  }

  /** One operation on the guest; returns false when a read found bytes it did not write. */
  protected abstract boolean step(EmulatedGuest g) throws VmdException;

  /** A short label for tables. */
  public abstract String describe();

  public synchronized void start(EmulatedGuest g, String name) {
    guest = g;
    startNanos = System.nanoTime();
    thread = new Thread(this::loop, name);
    thread.setDaemon(true);
    thread.start();
  }

  private void loop() {
    double interval = 1e9 / opsPerSecond;
    long due = System.nanoTime();
    try {
      while (!stop) {
        if (pauseRequested) {
          synchronized (pauseLock) {
            paused = true;
            pauseLock.notifyAll();
            while (pauseRequested && !stop) {
              pauseLock.wait();
            }
            paused = false;
          }
          due = System.nanoTime();
          continue;
        }
        long now = System.nanoTime();
        if (due - now > 20_000) {
          LockSupport.parkNanos(due - now); // woken early by pause()
          continue;
        }
        // A backlog of more than 100 ms is dropped: a stalled program does not catch up in a burst.
        due = Math.max(due, now - 100_000_000L) + (long) interval;
        if (!step(guest)) {
          corruptReads++;
        }
        ops++;
        int b = (int) ((System.nanoTime() - startNanos) / 1_000_000 / BUCKET_MILLIS);
        if (b < MAX_BUCKETS) {
          buckets.incrementAndGet(b);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      failure = t;
      LOG.error("workload {} failed", describe(), t);
    } finally {
      synchronized (pauseLock) {
        paused = true;
        pauseLock.notifyAll();
      }
    }
  }

  /** Stops at the next operation boundary and returns once stopped (the VM is paused). */
  public void pause() throws InterruptedException {
    synchronized (pauseLock) {
      pauseRequested = true;
      // A slow program may be parked until its next operation is due: the VM stops now, not then.
      LockSupport.unpark(thread);
      while (!paused) {
        pauseLock.wait();
      }
    }
  }

  /** Runs on, on {@code g} from now on (the migrated VM's memory at the destination). */
  public void resume(EmulatedGuest g) {
    synchronized (pauseLock) {
      guest = g;
      pauseRequested = false;
      pauseLock.notifyAll();
    }
  }

  /** The versions this program wrote, page by page (read once it is paused or stopped). */
  public long[] versions() {
    return versions;
  }

  public long operations() {
    return ops;
  }

  public long corruptReads() {
    return corruptReads;
  }

  public Throwable failure() {
    return failure;
  }

  /** Nanos (System.nanoTime) at which bucket 0 starts. */
  public long startNanos() {
    return startNanos;
  }

  /** Operations per second, bucket by bucket, up to now. */
  public double[] throughput() {
    int n = (int) Math.min(MAX_BUCKETS, (System.nanoTime() - startNanos) / 1_000_000 / BUCKET_MILLIS);
    double[] t = new double[n];
    for (int i = 0; i < n; i++) {
      t[i] = buckets.get(i) * 1000.0 / BUCKET_MILLIS;
    }
    return t;
  }

  @Override
  public void close() throws InterruptedException {
    stop = true;
    synchronized (pauseLock) {
      pauseLock.notifyAll();
    }
    if (thread != null) {
      thread.join(10_000);
    }
  }
}
