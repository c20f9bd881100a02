package io.vmd.bench.fault;

import org.HdrHistogram.Histogram;

/** What one workload measured on one target: latency distribution, operations and bytes over time. */
final class Result {
  final Histogram latencyNanos = new Histogram(3_600_000_000_000L, 3);
  long operations;
  long bytes;
  long elapsedNanos;

  double iops() {
    return operations * 1e9 / Math.max(1, elapsedNanos);
  }

  double megabytesPerSecond() {
    return bytes * 1e3 / Math.max(1, elapsedNanos);
  }

  double micros(double percentile) {
    return latencyNanos.getValueAtPercentile(percentile) / 1000.0;
  }
}
