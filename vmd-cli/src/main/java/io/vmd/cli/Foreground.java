package io.vmd.cli;

import java.util.concurrent.CountDownLatch;

/** Keeps a long-running role in the foreground until SIGTERM or Ctrl-C, then closes its parts in order. */
final class Foreground {
  private Foreground() {}

  /**
   * Prints {@code ready} (scripts and tests wait for it), then blocks until the JVM is asked to stop,
   * closing {@code parts} first to last; null parts are skipped, and one failing to close does not
   * stop the others.
   */
  static int run(String ready, AutoCloseable... parts) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      closeAll(parts);
      stopped.countDown();
    }, "vmd-shutdown"));
    System.out.println(ready);
    System.out.flush();
    stopped.await();
    return 0;
  }

  static void closeAll(AutoCloseable... parts) {
    for (AutoCloseable p : parts) {
      if (p != null) {
        try {
          p.close();
        } catch (Exception e) {
          System.err.println("vmd: while stopping: " + e);
        }
      }
    }
  }
}
