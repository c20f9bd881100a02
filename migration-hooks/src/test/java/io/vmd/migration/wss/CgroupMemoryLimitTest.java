package io.vmd.migration.wss;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.migration.swap.Pagemap;
import io.vmd.migration.swap.SwapFile;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A real process in a memory cgroup whose limit is below what it touches: the kernel swaps the rest
 * out, which pagemap then shows as swapped entries with offsets. Needs root (cgroups, swapon), as CI has.
 */
class CgroupMemoryLimitTest {
  @Test
  void processOverItsReservationGetsSwappedOutAndPagemapShowsWhere() throws Exception {
    int pages = 4096; // 16 MiB touched
    long limit = 8L << 20;
    try (SwapFile swap = SwapFile.on("cgroup-test.swap", 64);
        CgroupMemoryLimit cg = CgroupMemoryLimit.open("vmd-test-" + ProcessHandle.current().pid())) {
      Process p = new ProcessBuilder(SwapFile.probe().toString(), String.valueOf(pages), "plain")
          .redirectErrorStream(true).start();
      try {
        cg.add(p.pid());
        assertThat(cg.reserve(limit)).isEqualTo(limit);
        assertThat(cg.reserved()).isEqualTo(limit);
        OutputStream in = p.getOutputStream();
        in.write("go\n".getBytes(StandardCharsets.US_ASCII));
        in.flush();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String[] line = out.readLine().trim().split(" ");
        long address = Long.parseUnsignedLong(line[0], 16);
        long[] e = Pagemap.read(p.pid(), address, pages);
        Pagemap.Counts c = Pagemap.count(e);
        System.out.println("cgroup limit " + limit + ": " + c + ", usage " + cg.usage());
        assertThat(c.present() * 4096L).as("resident bytes stay under the limit").isLessThanOrEqualTo(limit);
        assertThat(c.swapped()).as("the rest went to swap").isGreaterThanOrEqualTo(pages - (int) (limit / 4096));
        assertThat(c.present() + c.swapped()).isEqualTo(pages);
        assertThat(cg.usage()).isLessThanOrEqualTo(limit);
        // Raising the reservation is a plain write too.
        assertThat(cg.reserve(32L << 20)).isEqualTo(32L << 20);
      } finally {
        p.getOutputStream().close();
        p.waitFor(5, TimeUnit.SECONDS);
        p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    }
  }
}
