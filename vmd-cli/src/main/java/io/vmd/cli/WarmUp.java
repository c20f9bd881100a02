package io.vmd.cli;

import io.vmd.load.SelfWarmUp;
import java.time.Duration;
import java.util.Locale;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * A gateway's or server's warm-up before it serves ({@code --warm-up}, shared by {@code vmd gateway} and
 * {@code vmd server}): a failed one (no loopback, as in a fresh network namespace; no memory for its
 * private store) costs speed, not the start.
 */
final class WarmUp {
  @Option(names = "--warm-up", defaultValue = "${env:VMD_WARM_UP:-10s}", converter = Vmd.DurationConverter.class,
      paramLabel = "DURATION", description = {
          "Before serving, run the data path on private loopback ports until the JIT compiler has compiled it, "
              + "at most this long (0: serve at once, and slowly for the first seconds; env VMD_WARM_UP) (default: "
              + "${DEFAULT-VALUE})."})
  Duration most;

  void gateway(int ioThreads, boolean secure) {
    run("gateway", ioThreads, secure);
  }

  void server(int ioThreads, boolean secure) {
    run("server", ioThreads, secure);
  }

  private void run(String role, int ioThreads, boolean secure) {
    if (most.isZero() || most.isNegative()) {
      return;
    }
    int threads = ioThreads > 0 ? ioThreads : Runtime.getRuntime().availableProcessors();
    // The private cluster's start and stop would read like this process's own (a server "on" a port it
    // never serves, a control plane that went away): only its errors are shown.
    ch.qos.logback.classic.Logger vmdLog = (ch.qos.logback.classic.Logger) LoggerFactory.getLogger("io.vmd");
    ch.qos.logback.classic.Level level = vmdLog.getLevel();
    vmdLog.setLevel(ch.qos.logback.classic.Level.ERROR);
    try {
      SelfWarmUp.Summary w = role.equals("gateway") ? SelfWarmUp.gateway(most, threads, secure)
          : SelfWarmUp.server(most, threads, secure);
      System.err.printf(Locale.ROOT, "vmd: warmed up the %s's data path: %d requests in %.1f s%n", role, w.requests(),
          w.took().toMillis() / 1000.0);
    } catch (Exception | OutOfMemoryError e) {
      System.err.println("vmd: warm-up skipped, the first seconds will be slow: " + e);
    } finally {
      vmdLog.setLevel(level);
    }
  }
}
