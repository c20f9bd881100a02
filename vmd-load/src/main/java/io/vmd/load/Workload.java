package io.vmd.load;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One measured pattern of I/O.
 *
 * @param key the name {@code --workloads} takes
 * @param name short label
 * @param blockSize bytes per request
 * @param queueDepth requests kept in flight
 * @param readPercent share of reads, 0..100
 * @param sequential sequential offsets instead of random ones
 */
public record Workload(String key, String name, int blockSize, int queueDepth, int readPercent, boolean sequential) {
  public static final Workload[] ALL = {
    new Workload("page-in", "4K random read QD1 (page-in)", 4096, 1, 100, false),
    new Workload("page-out", "4K random write QD1 (page-out)", 4096, 1, 0, false),
    new Workload("mixed", "4K random 70/30 QD32", 4096, 32, 70, false),
    new Workload("seq-read", "1M sequential read QD8", 1 << 20, 8, 100, true),
    new Workload("seq-write", "1M sequential write QD8", 1 << 20, 8, 0, true),
  };

  /** The workloads named by key, in the standard order; all of them for an empty list. */
  public static List<Workload> select(List<String> keys) {
    List<Workload> chosen = new ArrayList<>();
    for (Workload w : ALL) {
      if (keys == null || keys.isEmpty() || keys.contains(w.key())) {
        chosen.add(w);
      }
    }
    for (String k : keys == null ? List.<String>of() : keys) {
      if (Arrays.stream(ALL).noneMatch(w -> w.key().equals(k))) {
        throw new IllegalArgumentException("unknown workload '" + k + "' (page-in, page-out, mixed, seq-read, seq-write)");
      }
    }
    return chosen;
  }
}
