package io.vmd.migration.engine;

import java.util.concurrent.locks.LockSupport;

/**
 * Paces a sender to a link's bandwidth: tokens (bytes) accrue at {@code rate} per second up to
 * {@code burst}; taking more than there are waits until they accrued. Emulates the paper's 1 Gbit/s
 * link on loopback. Thread-safe; waiting parks the caller, never an event loop (senders are threads).
 */
final class TokenBucket {
  private final double rate;
  private final double burst;
  private double tokens;
  private long last;

  /** @param bytesPerSecond the link's speed; {@code <= 0} or infinite means unlimited */
  public TokenBucket(double bytesPerSecond, double burstBytes) {
    this.rate = bytesPerSecond;
    this.burst = burstBytes;
    this.tokens = burstBytes;
    this.last = System.nanoTime();
  }

  public double bytesPerSecond() {
    return rate;
  }

  /** Takes {@code bytes}, waiting as long as the link would need to carry them. */
  public void acquire(long bytes) {
    if (rate <= 0 || Double.isInfinite(rate)) {
      return;
    }
    long waitNanos;
    synchronized (this) {
      long now = System.nanoTime();
      tokens = Math.min(burst, tokens + (now - last) * rate / 1e9);
      last = now;
      tokens -= bytes;
      waitNanos = tokens >= 0 ? 0 : (long) (-tokens / rate * 1e9);
    }
    // Debt is allowed: the caller sleeps it off, and the next caller finds the bucket still negative.
    long until = System.nanoTime() + waitNanos;
    while (waitNanos > 0) {
      LockSupport.parkNanos(waitNanos);
      waitNanos = until - System.nanoTime();
    }
  }
}
