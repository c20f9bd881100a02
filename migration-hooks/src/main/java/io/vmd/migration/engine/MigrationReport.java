package io.vmd.migration.engine;

import io.vmd.migration.model.Policy;

/**
 * What one migration measured. Bytes are payload bytes on the migration stream, by kind: full pages
 * sent before the VM resumed at the destination (live rounds and stop-and-copy), swap offsets (Agile's
 * stand-ins for pages left in the VMD), pages pushed after resume, and pages sent on demand.
 */
public record MigrationReport(Policy policy, double totalSeconds, double downtimeSeconds, int rounds,
    long fullPageBytes, long offsetBytes, long pushedBytes, long demandBytes, long faultsFromSource,
    long faultsFromVmd, double sourceFaultP50Micros, double sourceFaultP99Micros, double vmdFaultP50Micros,
    double vmdFaultP99Micros, long startNanos, long resumedNanos, long endNanos) {

  public long totalBytes() {
    return fullPageBytes + offsetBytes + pushedBytes + demandBytes;
  }
}
