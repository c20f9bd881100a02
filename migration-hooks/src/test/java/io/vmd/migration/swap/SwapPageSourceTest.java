package io.vmd.migration.swap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.client.KitClients;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.protocol.Pages;
import io.vmd.server.MiniVmdCluster;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A source host writes pages by swap offset; a destination host (another client) reads them back. */
class SwapPageSourceTest {
  private MiniVmdCluster cluster;
  private VmdClient source;
  private VmdClient destination;
  private Namespace swap;

  @BeforeEach
  void start() throws Exception {
    cluster = MiniVmdCluster.builder().servers(3, 64L << 20).start();
    source = VmdClient.connect(KitClients.config(cluster));
    destination = VmdClient.connect(KitClients.config(cluster));
    source.namespaces().create("vm1-swap", 16L << 20, 1);
    swap = source.attach("vm1-swap", true);
  }

  @AfterEach
  void stop() {
    destination.close();
    source.close();
    cluster.close();
  }

  private static byte[] page(long offset) {
    byte[] b = new byte[Pages.PAGE_SIZE];
    new Random(offset * 31 + 7).nextBytes(b);
    return b;
  }

  @Test
  void pagesReadByOffsetFromAnotherHostAreByteExactSingleBatchedAndReadAhead() throws Exception {
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random r = new Random(seed);
    long[] offsets = new long[300];
    for (int i = 0; i < offsets.length; i++) {
      // Runs of neighbouring slots, as swap-outs of neighbouring pages land.
      offsets[i] = i % 10 == 0 ? 1 + r.nextInt(4000) : offsets[i - 1] + 1;
      swap.writeSync(offsets[i], page(offsets[i]));
    }
    try (SwapPageSource src = SwapPageSource.open(destination, "vm1-swap", 8)) {
      for (long off : offsets) {
        assertThat(src.readSync(off)).as("offset %d", off).isEqualTo(page(off));
      }
      assertThat(src.readAheadHits()).as("neighbours served from read-ahead windows").isGreaterThan(100);
      assertThat(src.pagesFetched()).isLessThan(offsets.length + 8L * 40);
      long[] shuffled = offsets.clone();
      Arrays.sort(shuffled);
      ByteBuf dst = Unpooled.directBuffer();
      VmdClient.await(src.readBatch(shuffled, shuffled.length, dst), 30_000);
      assertThat(dst.readableBytes()).isEqualTo(shuffled.length * Pages.PAGE_SIZE);
      for (int i = 0; i < shuffled.length; i++) {
        byte[] got = new byte[Pages.PAGE_SIZE];
        dst.getBytes(i * Pages.PAGE_SIZE, got);
        assertThat(got).as("batch slot %d offset %d", i, shuffled[i]).isEqualTo(page(shuffled[i]));
      }
      dst.release();
    }
  }

  @Test
  void pagesSwappedOutAfterOpeningAreFoundAndNeverWrittenOnesAreErrorsNotZeros() throws Exception {
    swap.writeSync(10, page(10));
    try (SwapPageSource src = SwapPageSource.open(destination, "vm1-swap", 1)) {
      assertThat(src.readSync(10)).isEqualTo(page(10));
      swap.writeSync(2000, page(2000));
      assertThat(src.readSync(2000)).isEqualTo(page(2000));
      assertThat(src.refreshes()).isEqualTo(1);
      assertThatThrownBy(() -> src.readSync(3000)).isInstanceOf(VmdException.class)
          .hasMessageContaining("swap offset 3000").hasMessageContaining("holds no page");
      assertThatThrownBy(() -> src.readSync(4096)).hasMessageContaining("outside namespace");
    }
  }
}
