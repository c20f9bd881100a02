package io.vmd.migration.swap;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.nio.file.ExtendedOpenOption;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Pagemap on a real process of this host: a small C program maps 1024 pages and writes a known value
 * into each, gives the second quarter back (MADV_DONTNEED) and pushes the third out to swap
 * (MADV_PAGEOUT) on a swap file this test sets up. The swapped entries' offsets must point at those
 * very bytes in the swap file (read with O_DIRECT, past the page cache). Needs root (swapon), as CI has.
 */
class PagemapTest {
  private static final int PAGES = 1024;
  private static SwapFile swap;
  private static Path probe;

  @BeforeAll
  static void swapFileAndProbe() throws Exception {
    probe = SwapFile.probe();
    swap = SwapFile.on("pagemap-test.swap", 32);
  }

  @AfterAll
  static void swapOff() throws Exception {
    swap.close();
  }

  @Test
  void touchedPagesArePresentGivenBackAreNeitherAndPagedOutAreSwappedAtTheirOffsets() throws Exception {
    Process p = new ProcessBuilder(probe.toString(), String.valueOf(PAGES)).redirectErrorStream(true).start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String[] line = out.readLine().trim().split(" ");
      long address = Long.parseUnsignedLong(line[0], 16);
      assertThat(line[2]).as("madvise(MADV_DONTNEED)").isEqualTo("0");
      assertThat(line[3]).as("madvise(MADV_PAGEOUT)").isEqualTo("0");
      long[] e = Pagemap.read(p.pid(), address, PAGES);
      int q = PAGES / 4;
      assertThat(Pagemap.count(Arrays.copyOfRange(e, 0, q))).isEqualTo(new Pagemap.Counts(q, 0, 0));
      assertThat(Pagemap.count(Arrays.copyOfRange(e, q, 2 * q))).isEqualTo(new Pagemap.Counts(0, 0, q));
      assertThat(Pagemap.count(Arrays.copyOfRange(e, 3 * q, 4 * q))).isEqualTo(new Pagemap.Counts(q, 0, 0));
      long[] pagedOut = Arrays.copyOfRange(e, 2 * q, 3 * q);
      assertThat(Pagemap.count(pagedOut).swapped()).as("pages pushed to swap").isEqualTo(q);
      assertThat(Pagemap.frame(e[0])).as("root sees frame numbers").isNotZero();
      int type = Pagemap.swapType(pagedOut[0]);
      Set<Long> offsets = new HashSet<>();
      try (FileChannel device = FileChannel.open(swap.path(), StandardOpenOption.READ, ExtendedOpenOption.DIRECT)) {
        ByteBuffer page = ByteBuffer.allocateDirect(2 * Pagemap.PAGE).alignedSlice(Pagemap.PAGE)
            .limit(Pagemap.PAGE).order(ByteOrder.nativeOrder());
        for (int i = 0; i < q; i++) {
          long entry = pagedOut[i];
          assertThat(Pagemap.swapType(entry)).isEqualTo(type);
          long offset = Pagemap.swapOffset(entry);
          assertThat(offset).as("slot 0 is the swap header").isPositive();
          assertThat(offsets.add(offset)).as("offsets are distinct").isTrue();
          page.clear();
          device.read(page, offset * Pagemap.PAGE);
          long virtualPage = 2L * q + i;
          assertThat(page.getLong(0)).as("swap slot %d holds page %d", offset, virtualPage)
              .isEqualTo(virtualPage * 1000003L);
          assertThat(page.getLong(8)).isEqualTo(virtualPage * 1000003L + 8);
        }
      }
    } finally {
      p.getOutputStream().close();
      p.waitFor(5, TimeUnit.SECONDS);
      p.destroyForcibly();
    }
  }

}
