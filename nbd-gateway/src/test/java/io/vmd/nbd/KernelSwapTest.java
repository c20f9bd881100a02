package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Linux kernel's own NBD client, as swap. A Debian kernel boots under QEMU (software emulation)
 * with 256 MiB of RAM, attaches the namespace with nbd-client, swaps onto it, and runs a program that
 * writes and checks 256 MiB in 160 MiB of RAM. The guest build and run live in benchmarks/vmlab.
 */
class KernelSwapTest {
  private static final long MIB = 1 << 20;
  private GatewayFixture fx;
  @TempDir Path dir;

  @AfterEach
  void stop() {
    if (fx != null) {
      fx.close();
    }
  }

  @Test
  void aGuestKernelSwapsOntoANamespaceAndGetsEveryPageBack() throws Exception {
    fx = new GatewayFixture(2, 1024 * MIB);
    fx.client.namespaces().create("vm1", 1024 * MIB, 1);
    Path run = Path.of(System.getProperty("user.dir")).resolve("../benchmarks/vmlab/run.sh").normalize();
    assertThat(run).exists();
    GatewayFixture.Result r = GatewayFixture.run(dir, run.toString(), String.valueOf(fx.gateway.address().port()),
        "vm1", "256", "160");
    Files.writeString(dir.resolve("guest.log"), r.out());
    System.out.println(r.out());
    assertThat(r.out()).as("guest console; stderr: %s", r.err())
        .contains("VMLAB: nbd0 attached, 2097152 sectors")
        .contains("VMLAB: memcheck OK: 256 MiB, 65536 pages checked, 0 bad")
        .contains("VMLAB: PASS");
    assertThat(r.exit()).isZero();
    // The guest really swapped, and its pages really went through VMD to the servers.
    Matcher m = Pattern.compile("pswpout (\\d+)").matcher(r.out());
    assertThat(m.find()).isTrue();
    long swappedOut = Long.parseLong(m.group(1));
    assertThat(swappedOut).isGreaterThan(16_384);
    ExportMetrics metrics = fx.gateway.metrics("vm1");
    assertThat(metrics.pagesOut()).isGreaterThanOrEqualTo(16_384);
    assertThat(metrics.pagesIn()).isGreaterThan(0);
    long stored = fx.storedPages(1);
    System.out.printf("kernel swap: guest pswpout %d, gateway page-outs %.0f, page-ins %.0f, pages on servers %d%n",
        swappedOut, metrics.pagesOut(), metrics.pagesIn(), stored);
    assertThat(stored).isGreaterThan(0);
  }
}
