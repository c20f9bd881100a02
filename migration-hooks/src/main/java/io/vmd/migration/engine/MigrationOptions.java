package io.vmd.migration.engine;

import io.vmd.migration.model.Policy;
import java.time.Duration;

/**
 * How to migrate.
 *
 * @param policy pre-copy (Xen or KVM stop rules), post-copy or Agile
 * @param bytesPerSecond the link's bandwidth, enforced by a token bucket on the source's sends
 * @param maxDowntime KVM pre-copy stops its rounds once the rest fits in this
 * @param readAheadPages the destination's read-ahead window for pages it reads from the VMD
 * @param faultTimeout how long a destination fault may wait for its page before the migration fails
 */
public record MigrationOptions(Policy policy, double bytesPerSecond, Duration maxDowntime, int readAheadPages,
    Duration faultTimeout) {
  public static MigrationOptions of(Policy policy, double bytesPerSecond) {
    return new MigrationOptions(policy, bytesPerSecond, Duration.ofMillis(300), 8, Duration.ofSeconds(30));
  }
}
