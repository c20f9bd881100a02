package io.vmd.migration.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BandwidthTest {
  @Test
  void bitsAndBytesInDecimalUnits() {
    assertThat(Bandwidth.parse("1Gbit")).isEqualTo(125e6);
    assertThat(Bandwidth.parse("100Mbit/s")).isEqualTo(12.5e6);
    assertThat(Bandwidth.parse("1Gbps")).isEqualTo(125e6);
    assertThat(Bandwidth.parse("10GbE")).isEqualTo(1.25e9);
    assertThat(Bandwidth.parse("125MB/s")).isEqualTo(125e6);
    assertThat(Bandwidth.parse("8Mb")).isEqualTo(1e6);
    assertThat(Bandwidth.parse("4096")).isEqualTo(4096);
    assertThat(Bandwidth.format(125e6)).isEqualTo("1.00 Gbit/s");
  }

  @Test
  void nonsenseIsRefusedWithTheExpectedForm() {
    assertThatThrownBy(() -> Bandwidth.parse("fast")).hasMessageContaining("1Gbit");
    assertThatThrownBy(() -> Bandwidth.parse("0Gbit")).hasMessageContaining("positive");
  }
}
