package io.vmd.migration.wss;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tracks a VM's working set without looking inside it (Agile paper §IV-D): every interval it reads the
 * VM's swap rate S; while S stays at or under τ the VM does not need all it has, so its reservation
 * shrinks by α; once S passes τ it needs more, and the reservation grows by β. The reservation thus
 * settles around the working set. Intervals are short (2 s) until the reservation is stable (it has
 * turned from shrinking to growing or back {@value #STABLE_TURNS} times), then long (30 s); a burst of
 * swapping while long makes them short again.
 */
public final class WorkingSetTracker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(WorkingSetTracker.class);
  static final int STABLE_TURNS = 4;

  /**
   * @param alpha shrink factor (< 1) while the VM swaps at or under τ
   * @param beta growth factor (> 1) while it swaps more
   * @param tauBytesPerSecond the swap rate τ that counts as needing memory
   * @param minBytes the reservation never goes below this
   * @param maxBytes nor above this (the VM's memory)
   */
  public record Settings(double alpha, double beta, double tauBytesPerSecond, Duration fastInterval,
      Duration slowInterval, long minBytes, long maxBytes) {
    public Settings {
      if (!(alpha > 0 && alpha < 1) || !(beta > 1) || tauBytesPerSecond < 0 || minBytes <= 0 || maxBytes < minBytes) {
        throw new IllegalArgumentException("need 0 < α < 1 < β, τ ≥ 0 and 0 < min ≤ max");
      }
    }

    /** The paper's values: α = 0.95, β = 1.03, τ = 4 KB/s, 2 s then 30 s. */
    public static Settings paper(long minBytes, long maxBytes) {
      return new Settings(0.95, 1.03, 4096, Duration.ofSeconds(2), Duration.ofSeconds(30), minBytes, maxBytes);
    }

    public Settings withIntervals(Duration fast, Duration slow) {
      return new Settings(alpha, beta, tauBytesPerSecond, fast, slow, minBytes, maxBytes);
    }
  }

  private final SwapRateSource swaps;
  private final ReservationActuator actuator;
  private final Settings settings;
  private final ScheduledExecutorService timer;
  private long lastSwapped;
  private long lastNanos;
  private double reservation;
  private int lastDirection;
  private int turns;
  private volatile boolean slow;
  private volatile double lastRate;

  public WorkingSetTracker(SwapRateSource swaps, ReservationActuator actuator, Settings settings) throws IOException {
    this.swaps = swaps;
    this.actuator = actuator;
    this.settings = settings;
    this.reservation = Math.min(settings.maxBytes(), Math.max(settings.minBytes(), actuator.reserved()));
    this.lastSwapped = swaps.swappedBytes();
    this.lastNanos = System.nanoTime();
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "vmd-wss-tracker");
      t.setDaemon(true);
      return t;
    });
  }

  /** Starts adjusting on its own thread. */
  public WorkingSetTracker start() {
    schedule();
    return this;
  }

  private void schedule() {
    Duration d = slow ? settings.slowInterval() : settings.fastInterval();
    timer.schedule(() -> {
      try {
        step();
      } catch (IOException | RuntimeException e) {
        LOG.warn("working-set tracker: {}", e.toString());
      }
      if (!timer.isShutdown()) {
        schedule();
      }
    }, d.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** One decision: measure S since the last one and move the reservation. Returns the new reservation. */
  public synchronized long step() throws IOException {
    long now = System.nanoTime();
    long swapped = swaps.swappedBytes();
    double seconds = Math.max(1e-6, (now - lastNanos) / 1e9);
    double rate = (swapped - lastSwapped) / seconds;
    lastSwapped = swapped;
    lastNanos = now;
    lastRate = rate;
    int direction = rate > settings.tauBytesPerSecond() ? 1 : -1;
    reservation = direction > 0 ? reservation * settings.beta() : reservation * settings.alpha();
    reservation = Math.min(settings.maxBytes(), Math.max(settings.minBytes(), reservation));
    if (lastDirection != 0 && direction != lastDirection) {
      turns++;
    }
    if (slow && direction > 0) {
      // Swapping again after it had settled: the working set moved; watch closely until it settles anew.
      slow = false;
      turns = 0;
    } else if (!slow && turns >= STABLE_TURNS) {
      slow = true;
    }
    lastDirection = direction;
    return actuator.reserve((long) reservation);
  }

  public synchronized long reservation() {
    return (long) reservation;
  }

  /** Whether it runs at the long interval (the reservation is stable). */
  public boolean stable() {
    return slow;
  }

  /** The swap rate S measured at the last decision, bytes per second. */
  public double lastSwapRate() {
    return lastRate;
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
