package io.vmd.migration.guest;

import io.vmd.client.VmdException;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The second paper's test program: a working set of W pages, written at d pages per second, plus an
 * optional read rate over the same set. Pages are chosen at random within the set.
 */
public final class DirtyRateWorkload extends Workload {
  private final int first;
  private final int wss;
  private final double writeShare;
  private final SplittableRandom random;
  private final double dirtyRate;
  private final double readRate;

  /**
   * @param first the working set's first page
   * @param wss working-set size in pages
   * @param dirtyRate pages written per second
   * @param readRate pages read per second
   */
  public DirtyRateWorkload(int pages, int first, int wss, double dirtyRate, double readRate, long seed) {
    super(pages, Math.max(1, dirtyRate + readRate));
    if (wss < 1 || first < 0 || first + wss > pages) {
      throw new IllegalArgumentException("working set outside the guest");
    }
    this.first = first;
    this.wss = wss;
    this.dirtyRate = dirtyRate;
    this.readRate = readRate;
    this.writeShare = dirtyRate / Math.max(1e-9, dirtyRate + readRate);
    this.random = new SplittableRandom(seed);
  }

  @Override
  protected boolean step(EmulatedGuest g) throws VmdException {
    int p = first + random.nextInt(wss);
    if (random.nextDouble() < writeShare) {
      g.write(p, ++versions[p]);
      return true;
    }
    return g.read(p, versions[p]);
  }

  @Override
  public String describe() {
    return String.format(Locale.ROOT, "W=%d pages, d=%.0f pages/s, r=%.0f pages/s", wss, dirtyRate, readRate);
  }
}
