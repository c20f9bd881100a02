package io.vmd.load;

import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * What one workload measured on one target: latency distribution, operations and bytes over time.
 * A client that reports only percentiles (fio) fills {@link #percentileNanos} instead of the histogram.
 */
public final class Result {
  public final Histogram latencyNanos = new Histogram(3_600_000_000_000L, 3);
  public final Map<Double, Long> percentileNanos = new TreeMap<>();
  public long operations;
  public long bytes;
  public long elapsedNanos;
  /** CPU the load generator spent, where it reports it itself (fio); -1 otherwise. */
  public double clientCpuMicros = -1;

  public double iops() {
    return operations * 1e9 / Math.max(1, elapsedNanos);
  }

  public double megabytesPerSecond() {
    return bytes * 1e3 / Math.max(1, elapsedNanos);
  }

  public boolean hasHistogram() {
    return percentileNanos.isEmpty();
  }

  public double micros(double percentile) {
    if (!percentileNanos.isEmpty()) {
      Long v = percentileNanos.get(percentile);
      if (v == null) {
        throw new IllegalArgumentException("no " + percentile + "th percentile in " + percentileNanos.keySet());
      }
      return v / 1000.0;
    }
    return latencyNanos.getValueAtPercentile(percentile) / 1000.0;
  }
}
