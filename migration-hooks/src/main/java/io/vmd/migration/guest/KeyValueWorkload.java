package io.vmd.migration.guest;

import io.vmd.client.VmdException;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Shaped like the Agile paper's Redis/YCSB runs: a key-value store whose records fill the guest (one
 * 4 KiB record per page), queried with YCSB's Zipfian key popularity (θ = 0.99, hot keys scattered over
 * the address space) and a read/update mix (YCSB workload A: 50/50). Hot records stay resident; cold
 * ones live in the VMD and are faulted in when asked for.
 */
public final class KeyValueWorkload extends Workload {
  private final int records;
  private final double updateShare;
  private final SplittableRandom random;
  private final double zetan;
  private final double theta = 0.99;
  private final double alpha;
  private final double eta;

  public KeyValueWorkload(int pages, double updateShare, double opsPerSecond, long seed) {
    super(pages, opsPerSecond);
    this.records = pages;
    this.updateShare = updateShare;
    this.random = new SplittableRandom(seed);
    double z = 0;
    for (int i = 1; i <= records; i++) {
      z += 1.0 / Math.pow(i, theta);
    }
    this.zetan = z;
    double zeta2 = 1 + 1.0 / Math.pow(2, theta);
    this.alpha = 1.0 / (1.0 - theta);
    this.eta = (1 - Math.pow(2.0 / records, 1 - theta)) / (1 - zeta2 / zetan);
  }

  /** Gray et al.'s Zipfian rank (YCSB's ZipfianGenerator), then scrambled so hot keys spread out. */
  int nextRecord() {
    double u = random.nextDouble();
    double uz = u * zetan;
    long rank;
    if (uz < 1.0) {
      rank = 0;
    } else if (uz < 1.0 + Math.pow(0.5, theta)) {
      rank = 1;
    } else {
      rank = (long) (records * Math.pow(eta * u - eta + 1, alpha));
    }
    long h = (Math.min(rank, records - 1) + 1) * 0x9E3779B97F4A7C15L;
    h ^= h >>> 31;
    return (int) Long.remainderUnsigned(h, records);
  }

  @Override
  protected boolean step(EmulatedGuest g) throws VmdException {
    int p = nextRecord();
    if (random.nextDouble() < updateShare) {
      g.write(p, ++versions[p]);
      return true;
    }
    return g.read(p, versions[p]);
  }

  @Override
  public String describe() {
    return String.format(Locale.ROOT, "key-value, %d records, zipfian 0.99, %.0f%% updates", records,
        updateShare * 100);
  }
}
