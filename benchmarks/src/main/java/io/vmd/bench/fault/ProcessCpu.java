package io.vmd.bench.fault;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One process's CPU time from /proc: all of it (user + kernel, every thread, also threads that have
 * exited) and the part its JIT compiler threads spent. A cold JVM's compiler competes with its event
 * loops for the same cores, so "CPU per request" without the JIT share would hide why the first
 * seconds are slow. Threads are told apart by name: HotSpot names them "C1 CompilerThreadN" and
 * "C2 CompilerThreadN" (the kernel keeps 15 bytes of it). A compiler thread that exited between two
 * snapshots takes its JIT time with it (the process total keeps it), so the JIT share is a lower bound.
 */
final class ProcessCpu {
  /** CPU microseconds of one process at one moment; zeros where /proc has nothing (process gone). */
  record Snapshot(double totalMicros, double jitMicros) {
    Snapshot minus(Snapshot earlier) {
      return new Snapshot(totalMicros - earlier.totalMicros, jitMicros - earlier.jitMicros);
    }
  }

  private ProcessCpu() {}

  static Snapshot of(long pid) {
    Path proc = Path.of("/proc", Long.toString(pid));
    double total = ticks(proc.resolve("stat"));
    double jit = 0;
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(proc.resolve("task"))) {
      for (Path task : tasks) {
        if (isCompiler(task)) {
          jit += ticks(task.resolve("stat"));
        }
      }
    } catch (IOException | RuntimeException gone) {
      // the process (or /proc) is gone: report what was read
    }
    return new Snapshot(total * CpuWatch.TICK_MICROS, jit * CpuWatch.TICK_MICROS);
  }

  private static boolean isCompiler(Path task) {
    try {
      String comm = Files.readString(task.resolve("comm")).trim();
      return comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre");
    } catch (IOException | RuntimeException gone) {
      return false;
    }
  }

  /** utime + stime of a /proc stat file; 0 if it cannot be read. */
  static long ticks(Path stat) {
    try {
      return parseTicks(Files.readString(stat));
    } catch (IOException | RuntimeException gone) {
      return 0;
    }
  }

  /**
   * Fields 14 and 15 of proc(5)'s stat line. The command name (field 2) is in parentheses and may
   * itself hold spaces and parentheses, so fields are counted from the last ')'.
   */
  static long parseTicks(String line) {
    String[] f = line.substring(line.lastIndexOf(')') + 2).split(" ");
    // f[0] is field 3 (state): utime is field 14, stime field 15
    return Long.parseLong(f[11]) + Long.parseLong(f[12]);
  }
}
