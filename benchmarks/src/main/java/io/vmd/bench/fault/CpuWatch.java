package io.vmd.bench.fault;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Machine-wide busy CPU time over a measurement, from /proc/stat: everything every process spent,
 * in user space and in the kernel (socket copies are kernel time). On a saturated machine throughput
 * is CPU per request turned upside down, so CPU per request says why one target is faster than
 * another where latency alone cannot. Reads nothing (and reports -1) where /proc/stat is missing.
 */
final class CpuWatch {
  private static final Path STAT = Path.of("/proc/stat");
  /** USER_HZ: Linux reports /proc/stat in 1/100 s on every architecture Java runs on here. */
  static final double TICK_MICROS = 10_000;

  private final long[] start;

  CpuWatch() {
    start = read();
  }

  /** user, system, busy (all but idle and iowait) ticks since the start, or null. */
  Usage stop() {
    long[] end = read();
    if (start == null || end == null) {
      return null;
    }
    long user = (end[0] + end[1]) - (start[0] + start[1]);
    long system = (end[2] + end[5] + end[6]) - (start[2] + start[5] + start[6]);
    long busy = 0;
    for (int i = 0; i < Math.min(end.length, 8); i++) {
      if (i != 3 && i != 4) {
        busy += end[i] - start[i];
      }
    }
    return new Usage(user * TICK_MICROS, system * TICK_MICROS, busy * TICK_MICROS);
  }

  /** CPU microseconds spent in user space, in the kernel (incl. interrupts) and in all. */
  record Usage(double userMicros, double systemMicros, double busyMicros) {}

  private static long[] read() {
    try {
      for (String line : Files.readAllLines(STAT)) {
        if (line.startsWith("cpu ")) {
          String[] f = line.trim().split("\\s+");
          long[] v = new long[f.length - 1];
          for (int i = 1; i < f.length; i++) {
            v[i - 1] = Long.parseLong(f[i]);
          }
          return v;
        }
      }
    } catch (IOException | RuntimeException e) {
      return null;
    }
    return null;
  }
}
