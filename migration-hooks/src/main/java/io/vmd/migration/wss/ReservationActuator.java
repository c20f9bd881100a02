package io.vmd.migration.wss;

import java.io.IOException;

/**
 * Sets how much host memory a VM may keep resident: the knob the working-set tracker turns. A cgroup's
 * memory limit for a process on this host, the emulated guest's resident limit here; QEMU's balloon
 * is the one to come.
 */
public interface ReservationActuator {
  /** Applies {@code bytes} as the VM's reservation; returns what was applied (rounded, clamped). */
  long reserve(long bytes) throws IOException;

  /** The reservation in force now. */
  long reserved() throws IOException;
}
