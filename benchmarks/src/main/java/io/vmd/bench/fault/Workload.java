package io.vmd.bench.fault;

/**
 * One measured pattern of I/O.
 *
 * @param name short label
 * @param blockSize bytes per request
 * @param queueDepth requests kept in flight
 * @param readPercent share of reads, 0..100
 * @param sequential sequential offsets instead of random ones
 */
record Workload(String name, int blockSize, int queueDepth, int readPercent, boolean sequential) {
  static final Workload[] ALL = {
    new Workload("4K random read QD1 (page-in)", 4096, 1, 100, false),
    new Workload("4K random write QD1 (page-out)", 4096, 1, 0, false),
    new Workload("4K random 70/30 QD32", 4096, 32, 70, false),
    new Workload("1M sequential read QD8", 1 << 20, 8, 100, true),
    new Workload("1M sequential write QD8", 1 << 20, 8, 0, true),
  };
}
