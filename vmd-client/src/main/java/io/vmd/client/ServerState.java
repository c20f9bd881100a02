package io.vmd.client;

import io.vmd.common.HostPort;
import io.vmd.meta.Member;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.Availability;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a client knows of one server: its membership (slot, status, as the control plane says),
 * whether it is up, and how much memory it has free. The free figure is the server's last report,
 * lowered locally by every page placed since, so that placement does not overshoot a server between
 * two reports.
 */
final class ServerState {
  private final int index;
  private final HostPort address;
  private final String id;
  private volatile ServerStatus status;
  /** One connection per event loop of the client. */
  ServerConnection[] connections;
  private final AtomicLong free = new AtomicLong();
  private volatile boolean up;
  private volatile long downSinceNanos = System.nanoTime();
  private final AtomicLong comebacks = new AtomicLong();
  private volatile Availability reported = new Availability(0, 0, 0, 0);

  ServerState(Member m) {
    this.index = m.slot();
    this.address = m.address();
    this.id = m.id();
    this.status = m.status();
  }

  /** A snapshot for callers outside the client. */
  ServerInfo info() {
    return new ServerInfo(index, id, address, status, up(), free(), reported, downForNanos());
  }

  /** The server's cluster-wide slot: what location tables store. */
  public int index() {
    return index;
  }

  /** The server's stable id. */
  public String id() {
    return id;
  }

  public ServerStatus status() {
    return status;
  }

  void status(ServerStatus s) {
    status = s;
  }

  /** Removed from the cluster: whatever it held is gone, and it never comes back. */
  public boolean removed() {
    return status == ServerStatus.REMOVED;
  }

  /** Whether new pages may be placed here: up, and ACTIVE in the control plane. */
  public boolean takesNewPages() {
    return up && status.takesNewPages();
  }

  public HostPort address() {
    return address;
  }

  public boolean up() {
    return up && !removed();
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
