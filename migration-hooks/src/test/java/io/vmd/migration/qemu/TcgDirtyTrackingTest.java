package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TcgDirtyTrackingTest {
  private static final long MIB = 1 << 20;

  @Test
  void onAnAffectedQemuUnderTcgRamIsSizedOffTheBitmapWord() {
    assertThat(TcgDirtyTracking.guestRam(512 * MIB, "tcg", 7)).isEqualTo(524280L << 10);
    assertThat(TcgDirtyTracking.guestRam(512 * MIB, "kvm:tcg", 8)).isEqualTo(524280L << 10);
    assertThat(TcgDirtyTracking.guestRam(512 * MIB, "tcg", 7) % TcgDirtyTracking.BITMAP_WORD_BYTES).isNotZero();
    // Already off a 256 KiB multiple: unchanged.
    assertThat(TcgDirtyTracking.guestRam(512 * MIB + 4096, "tcg", 7)).isEqualTo(512 * MIB + 4096);
  }

  @Test
  void underKvmOrOnAFixedQemuRamIsAsAsked() {
    assertThat(TcgDirtyTracking.guestRam(512 * MIB, "kvm", 7)).isEqualTo(512 * MIB);
    assertThat(TcgDirtyTracking.guestRam(512 * MIB, "tcg", 9)).isEqualTo(512 * MIB);
    assertThat(TcgDirtyTracking.affected(8)).isTrue();
    assertThat(TcgDirtyTracking.affected(9)).isFalse();
  }

  @Test
  void theInstalledQemuIsReadFromItsVersionLine() {
    // The test command installs Debian's qemu-system-x86 (7.2 on bookworm).
    assertThat(TcgDirtyTracking.installedMajor()).isPositive();
  }
}
