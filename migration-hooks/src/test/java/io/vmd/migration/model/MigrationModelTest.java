package io.vmd.migration.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

/** Hand-checked cases; the link moves 1000 pages per second so that times read as page counts. */
class MigrationModelTest {
  private static final long P = MigrationModel.PAGE;
  private static final double B = 1000.0 * P;

  private static MigrationModel.Inputs pages(long memory, long wss, double dirtyRate) {
    return MigrationModel.Inputs.of(memory * P, wss * P, dirtyRate, B);
  }

  @Test
  void idleVmPreCopyIsOneRoundOfAllMemory() {
    MigrationModel.Estimate e = MigrationModel.xenPreCopy(pages(10_000, 0, 0));
    assertThat(e.rounds()).isEqualTo(1);
    assertThat(e.seconds()).isCloseTo(10.0, within(1e-9));
    assertThat(e.bytes()).isCloseTo(10_000.0 * P, within(1e-3));
    assertThat(e.downtimeSeconds()).isZero();
  }

  @Test
  void xenPreCopyStopsWhenFewerThanFiftyPagesRemain() {
    // 10 s for all memory; 1000 pages dirtied → 1 s; 100 → 0.1 s; 10 left (< 50): stop and copy 10.
    MigrationModel.Estimate e = MigrationModel.xenPreCopy(pages(10_000, 2_000, 100));
    assertThat(e.rounds()).isEqualTo(3);
    assertThat(e.downtimeSeconds()).isCloseTo(0.01, within(1e-9));
    assertThat(e.seconds()).isCloseTo(11.11, within(1e-9));
    assertThat(e.bytes()).isCloseTo(11_110.0 * P, within(1e-3));
  }

  @Test
  void xenPreCopyStopsAfterSendingThreeTimesMemoryWhenDirtyingOutrunsTheLink() {
    // The whole 5000-page working set is dirty after every round: 10 + 5 × 5 s live, sent 35,000 > 30,000.
    MigrationModel.Estimate e = MigrationModel.xenPreCopy(pages(10_000, 5_000, 2_000));
    assertThat(e.rounds()).isEqualTo(6);
    assertThat(e.downtimeSeconds()).isCloseTo(5.0, within(1e-9));
    assertThat(e.seconds()).isCloseTo(40.0, within(1e-9));
    assertThat(e.bytes()).isCloseTo(40_000.0 * P, within(1e-3));
  }

  @Test
  void xenPreCopyStopsAfterThirtyRounds() {
    // d·p equals B and W is small: 1000 pages every 1 s round, never under 50, never over 3M in 30 rounds.
    MigrationModel.Estimate e = MigrationModel.xenPreCopy(pages(100_000, 1_000, 1_000));
    assertThat(e.rounds()).isEqualTo(30);
    assertThat(e.seconds()).isCloseTo(100 + 29 * 1.0 + 1.0, within(1e-9));
  }

  @Test
  void kvmPreCopyConvergesUnderItsDowntimeOrReportsItCannot() {
    MigrationModel.Estimate light = MigrationModel.kvmPreCopy(pages(10_000, 2_000, 100));
    // Remainders 1000 (1 s), 100 (0.1 s ≤ 0.3 s): stops after round 2 with 0.1 s of downtime.
    assertThat(light.converged()).isTrue();
    assertThat(light.rounds()).isEqualTo(2);
    assertThat(light.downtimeSeconds()).isCloseTo(0.1, within(1e-9));
    assertThat(light.seconds()).isCloseTo(11.1, within(1e-9));
    MigrationModel.Estimate heavy = MigrationModel.kvmPreCopy(pages(10_000, 5_000, 2_000));
    assertThat(heavy.converged()).isFalse();
    assertThat(heavy.rounds()).isEqualTo(MigrationModel.KVM_MAX_ROUNDS);
  }

  @Test
  void postCopyMovesMemoryOnce() {
    MigrationModel.Estimate e = MigrationModel.postCopy(pages(10_000, 5_000, 2_000));
    assertThat(e.seconds()).isCloseTo(10.0, within(1e-9));
    assertThat(e.bytes()).isCloseTo(10_000.0 * P, within(1e-3));
  }

  @Test
  void agileSendsTheResidentSetOffsetsAndWhatWasDirtiedMeanwhile() {
    MigrationModel.Inputs in = pages(10_000, 2_000, 100).withResident(4_000 * P);
    MigrationModel.Estimate e = MigrationModel.agile(in);
    double t1 = (4_000.0 * P + 8.0 * 6_000) / B;
    assertThat(e.seconds()).isCloseTo(t1 + 100 * t1 * P / B, within(1e-9));
    assertThat(e.bytes()).isCloseTo(4_000.0 * P + 48_000 + 100 * t1 * P, within(1e-3));
    assertThat(MigrationModel.ranked(in).get(0).policy()).isEqualTo(Policy.AGILE);
  }

  @Test
  void rankingPutsPostCopyFirstForAWriteHeavyVmWithNothingSwapped() {
    MigrationModel.Inputs in = pages(10_000, 5_000, 2_000);
    assertThat(MigrationModel.ranked(in).get(0).policy()).isEqualTo(Policy.POST_COPY);
    assertThat(MigrationModel.ranked(in).get(3).policy()).isEqualTo(Policy.KVM_PRE_COPY);
  }
}
