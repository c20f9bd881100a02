package io.vmd.migration.wss;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.vmd.client.KitClients;
import io.vmd.client.VmdClient;
import io.vmd.migration.guest.DirtyRateWorkload;
import io.vmd.migration.guest.EmulatedGuest;
import io.vmd.server.MiniVmdCluster;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class WorkingSetTrackerTest {
  /** A reservation that only remembers what it was set to. */
  static final class Recorded implements ReservationActuator {
    long bytes;

    Recorded(long bytes) {
      this.bytes = bytes;
    }

    @Override
    public long reserve(long b) {
      bytes = b;
      return b;
    }

    @Override
    public long reserved() {
      return bytes;
    }
  }

  @Test
  void shrinksByAlphaWhileQuietGrowsByBetaWhileSwappingAndStaysInBounds() throws Exception {
    AtomicLong swapped = new AtomicLong();
    Recorded r = new Recorded(1000L << 20);
    WorkingSetTracker t = new WorkingSetTracker(swapped::get, r,
        new WorkingSetTracker.Settings(0.95, 1.03, 4096, Duration.ofSeconds(2), Duration.ofSeconds(30), 100L << 20,
            1000L << 20));
    assertThat((double) t.step()).isCloseTo(950.0 * (1 << 20), within(1.0));
    assertThat((double) t.step()).isCloseTo(902.5 * (1 << 20), within(1.0));
    swapped.addAndGet(100L << 20); // far above 4 KB/s whatever the elapsed time
    assertThat((double) t.step()).isCloseTo(902.5 * 1.03 * (1 << 20), within(1.0));
    for (int i = 0; i < 200; i++) {
      t.step();
    }
    assertThat(t.reservation()).as("never under the minimum").isEqualTo(100L << 20);
    for (int i = 0; i < 200; i++) {
      swapped.addAndGet(100L << 20);
      t.step();
    }
    assertThat(t.reservation()).as("never over the maximum").isEqualTo(1000L << 20);
    t.close();
  }

  @Test
  void becomesStableAfterTurningBackAndForthAndWatchesCloselyAgainWhenSwappingReturns() throws Exception {
    AtomicLong swapped = new AtomicLong();
    WorkingSetTracker t = new WorkingSetTracker(swapped::get, new Recorded(500L << 20),
        WorkingSetTracker.Settings.paper(1L << 20, 1L << 30));
    for (int i = 0; i < WorkingSetTracker.STABLE_TURNS + 1; i++) {
      assertThat(t.stable()).isFalse();
      if (i % 2 == 0) {
        swapped.addAndGet(64L << 20);
      }
      t.step();
    }
    assertThat(t.stable()).isTrue();
    t.step(); // quiet: stays stable
    assertThat(t.stable()).isTrue();
    swapped.addAndGet(64L << 20);
    t.step();
    assertThat(t.stable()).as("swapping after settling: back to short intervals").isFalse();
    t.close();
  }

  @Test
  void emulatedGuestReservationSettlesWithinTenPercentOfItsWorkingSet() throws Exception {
    int pages = 4096;
    int wss = 1024;
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 64L << 20).start();
        VmdClient client = VmdClient.connect(KitClients.config(c))) {
      client.namespaces().create("wss-swap", (long) pages * 4096, 1);
      EmulatedGuest g = EmulatedGuest.booted(pages, pages, client.attach("wss-swap", true));
      // The program reads and writes uniformly over 1024 pages at 6000 ops/s.
      DirtyRateWorkload w = new DirtyRateWorkload(pages, 1000, wss, 3000, 3000, 7);
      w.start(g, "wss-program");
      // The paper's α, β and τ; intervals scaled from 2 s / 30 s to 100 ms / 1 s to keep the test short.
      WorkingSetTracker t = new WorkingSetTracker(GuestReservation.swapRate(g), new GuestReservation(g),
          WorkingSetTracker.Settings.paper(64L * 4096, (long) pages * 4096)
              .withIntervals(Duration.ofMillis(100), Duration.ofSeconds(1)));
      try {
        for (int i = 0; i < 60; i++) {
          Thread.sleep(100);
          t.step();
        }
        // The reservation saws up and down by about a tenth around its level, a tooth every 1-1.5 s:
        // averaged over four seconds, so that where the window starts in a tooth moves the mean little.
        List<Long> settled = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
          Thread.sleep(100);
          settled.add(t.step() / 4096);
        }
        double mean = settled.stream().mapToLong(Long::longValue).average().orElseThrow();
        System.out.println("reservation over the last 4 s (pages): " + settled + ", working set " + wss);
        assertThat(mean).as("mean reservation vs working set %d pages", wss).isCloseTo(wss, within(wss * 0.10));
        assertThat(w.corruptReads()).isZero();
      } finally {
        t.close();
        w.close();
        g.close();
      }
    }
  }
}
