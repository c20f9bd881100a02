package io.vmd.client;

import io.vmd.common.HostPort;
import io.vmd.protocol.Availability;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a client knows of one server: whether it is up and how much memory it has free. The free
 * figure is the server's last report, lowered locally by every page placed since, so that placement
 * does not overshoot a server between two reports.
 */
public final class ServerState {
  private final int index;
  private final HostPort address;
  private final AtomicLong free = new AtomicLong();
  private volatile boolean up;
  private volatile long downSinceNanos = System.nanoTime();
  private final java.util.concurrent.atomic.AtomicLong comebacks = new java.util.concurrent.atomic.AtomicLong();
  private volatile Availability reported = new Availability(0, 0, 0, 0);

  ServerState(int index, HostPort address) {
    this.index = index;
    this.address = address;
  }

  public int index() {
    return index;
  }

  public HostPort address() {
    return address;
  }

  public boolean up() {
    return up;
  }

  /** Free bytes as placement sees them. */
  public long free() {
    return free.get();
  }

  /** The server's last report. */
  public Availability availability() {
    return reported;
  }

  synchronized void up(boolean isUp) {
    if (!isUp && up) {
      downSinceNanos = System.nanoTime();
    }
    if (isUp && !up) {
      comebacks.incrementAndGet();
    }
    this.up = isUp;
  }

  /**
   * How many times the server has come up (connected and answered HELLO) after being down or never
   * reached: a change means it may have missed writes, or restarted and lost its pages.
   */
  public long comebacks() {
    return comebacks.get();
  }

  /** How long it has been down (0 while up). */
  public long downForNanos() {
    return up ? 0 : System.nanoTime() - downSinceNanos;
  }

  void report(Availability a) {
    reported = a;
    free.set(a.freeBytes());
  }

  void placed(long bytes) {
    free.addAndGet(-bytes);
  }

  /** The server said NO_SPACE: place nothing new there until its next report. */
  void full() {
    free.set(0);
  }
}
