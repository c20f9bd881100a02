package io.vmd.migration.qemu;

import io.vmd.migration.wss.ReservationActuator;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;

/**
 * A QEMU guest's balloon as its memory reservation: what the working-set tracker sets, the balloon
 * leaves the guest (QMP {@code balloon}), and the guest kernel swaps the rest onto its namespace.
 * Targets are whole MiB and never below {@code floorBytes}, so a runaway loop cannot starve the guest
 * of the memory its kernel needs to run at all.
 */
public final class BalloonReservation implements ReservationActuator {
  private static final long MIB = 1 << 20;
  private final Qmp qmp;
  private final long floorBytes;
  private final long memoryBytes;
  private volatile long target;

  /**
   * @param memoryBytes the guest's RAM (the most a balloon can give it)
   * @param floorBytes the least it is ever left
   */
  public BalloonReservation(Qmp qmp, long memoryBytes, long floorBytes) {
    if (floorBytes <= 0 || floorBytes > memoryBytes) {
      throw new IllegalArgumentException("need 0 < floor ≤ memory");
    }
    this.qmp = qmp;
    this.memoryBytes = memoryBytes;
    this.floorBytes = floorBytes;
    this.target = memoryBytes;
  }

  @Override
  public long reserve(long bytes) throws IOException {
    long t = Math.max(floorBytes, Math.min(memoryBytes, bytes / MIB * MIB));
    try {
      qmp.call("balloon", Map.of("value", t), Duration.ofSeconds(10));
    } catch (QmpException e) {
      throw new IOException(e.getMessage(), e);
    }
    target = t;
    return t;
  }

  /** What the guest has now as the balloon driver reports it (it follows a new target over a while). */
  @Override
  public long reserved() throws IOException {
    try {
      long actual = qmp.call("query-balloon", null, Duration.ofSeconds(10)).path("actual").asLong();
      return actual > 0 ? actual : target;
    } catch (QmpException e) {
      throw new IOException(e.getMessage(), e);
    }
  }

  /** The last target set. */
  public long target() {
    return target;
  }
}
