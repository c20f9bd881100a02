package io.vmd.migration.wss;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class GatewayPageInsTest {
  private static final String EXPOSITION = """
      # HELP vmd_gateway_pages_in_total pages read (page-ins)
      # TYPE vmd_gateway_pages_in_total counter
      vmd_gateway_pages_in_total{namespace="vm1"} 1234.0
      vmd_gateway_pages_in_total{namespace="vm10"} 5.0
      vmd_gateway_pages_out_total{namespace="vm2"} 99.0
      vmd_gateway_pages_in_total{namespace="vm2"} 7.0 1700000000000
      """;

  @Test
  void readsTheNamespacesCounterAndNoOther() {
    assertThat(GatewayPageIns.pagesIn(EXPOSITION, "vm1")).isEqualTo(1234);
    assertThat(GatewayPageIns.pagesIn(EXPOSITION, "vm10")).isEqualTo(5);
    assertThat(GatewayPageIns.pagesIn(EXPOSITION, "vm2")).as("with a timestamp").isEqualTo(7);
    assertThat(GatewayPageIns.pagesIn(EXPOSITION, "vm3")).as("not opened yet").isZero();
  }
}
