package io.vmd.migration.trigger;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Decides when and which VMs to migrate (Agile paper §IV): when the sum of the working sets on a host
 * passes the high watermark, migrate the fewest VMs whose departure brings the sum under the low
 * watermark. Two watermarks give hysteresis, so a host near one line does not migrate back and forth.
 *
 * <p>The fewest VMs are the largest ones: taking working sets largest first reaches any target with
 * the fewest picks, so the count k is exact for every N. Among the sets of k VMs that suffice, the one
 * that moves the least working set is chosen (least migration traffic): exactly, by trying every
 * k-subset, up to {@value #EXACT_LIMIT} VMs; beyond that by a documented heuristic: start from the k
 * largest and repeatedly swap a chosen VM for a smaller unchosen one while the set still suffices.
 */
final class MigrationTrigger {
  static final int EXACT_LIMIT = 20;

  private final long high;
  private final long low;

  public MigrationTrigger(long highWatermarkBytes, long lowWatermarkBytes) {
    if (lowWatermarkBytes < 0 || lowWatermarkBytes > highWatermarkBytes) {
      throw new IllegalArgumentException("need 0 ≤ low watermark ≤ high watermark");
    }
    this.high = highWatermarkBytes;
    this.low = lowWatermarkBytes;
  }

  /** A VM on the host and its current working set. */
  public record Vm(String name, long workingSetBytes) {}

  /**
   * The VMs to migrate now, largest first; empty while the sum is at or under the high watermark.
   * When even moving every VM would not do (a low watermark below zero is refused), all are chosen.
   */
  public List<Vm> choose(List<Vm> vms) {
    long sum = 0;
    for (Vm v : vms) {
      sum += v.workingSetBytes();
    }
    if (sum <= high) {
      return List.of();
    }
    long needed = sum - low;
    Vm[] bySize = vms.toArray(new Vm[0]);
    Arrays.sort(bySize, Comparator.comparingLong(Vm::workingSetBytes).reversed());
    int k = 0;
    long moved = 0;
    while (moved < needed && k < bySize.length) {
      moved += bySize[k++].workingSetBytes();
    }
    boolean[] pick = bySize.length <= EXACT_LIMIT ? exact(bySize, k, needed) : swapDown(bySize, k, needed);
    List<Vm> chosen = new ArrayList<>();
    for (int i = 0; i < bySize.length; i++) {
      if (pick[i]) {
        chosen.add(bySize[i]);
      }
    }
    return chosen;
  }

  /** The k-subset with the least sum that still reaches {@code needed}, over every k-subset. */
  private static boolean[] exact(Vm[] vms, int k, long needed) {
    int n = vms.length;
    int[] idx = new int[k];
    for (int i = 0; i < k; i++) {
      idx[i] = i;
    }
    long best = Long.MAX_VALUE;
    int[] bestIdx = idx.clone();
    while (true) {
      long s = 0;
      for (int i : idx) {
        s += vms[i].workingSetBytes();
      }
      if (s >= needed && s < best) {
        best = s;
        bestIdx = idx.clone();
      }
      int i = k - 1;
      while (i >= 0 && idx[i] == n - k + i) {
        i--;
      }
      if (i < 0) {
        break;
      }
      idx[i]++;
      for (int j = i + 1; j < k; j++) {
        idx[j] = idx[j - 1] + 1;
      }
    }
    boolean[] pick = new boolean[n];
    for (int i : bestIdx) {
      pick[i] = true;
    }
    return pick;
  }

  /** The heuristic for many VMs: from the k largest, swap in smaller VMs while the set still suffices. */
  private static boolean[] swapDown(Vm[] vms, int k, long needed) {
    boolean[] pick = new boolean[vms.length];
    long sum = 0;
    for (int i = 0; i < k; i++) {
      pick[i] = true;
      sum += vms[i].workingSetBytes();
    }
    boolean improved = true;
    while (improved) {
      improved = false;
      for (int in = 0; in < vms.length && !improved; in++) {
        if (!pick[in]) {
          continue;
        }
        // vms is sorted largest first: the smallest sufficient replacement is the last one that fits.
        for (int out = vms.length - 1; out > in; out--) {
          long next = sum - vms[in].workingSetBytes() + vms[out].workingSetBytes();
          if (!pick[out] && next >= needed && next < sum) {
            pick[in] = false;
            pick[out] = true;
            sum = next;
            improved = true;
            break;
          }
        }
      }
    }
    return pick;
  }
}
