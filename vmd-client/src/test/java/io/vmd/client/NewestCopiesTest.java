package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class NewestCopiesTest {

  /**
   * Random copies (several servers, random stamps per copy, some pages over-replicated) offered in a
   * random order: the table keeps R copies with each page's highest stamp, everything else is
   * discarded, and the order does not matter.
   */
  @Test
  void keepsTheNewestCopiesWhateverTheOrder() {
    long seed = System.nanoTime();
    System.out.println("NewestCopiesTest seed " + seed);
    Random r = new Random(seed);
    int servers = 5;
    int replicas = 2;
    long pages = 3 * (1 << LocationTable.CHUNK_SHIFT) + 17;
    List<long[]> copies = new ArrayList<>(); // server, page, stamp
    long[] newest = new long[(int) pages];
    Arrays.fill(newest, -1);
    Set<Long> seen = new HashSet<>();
    for (int i = 0; i < 20_000; i++) {
      long page = r.nextInt(2000) + (r.nextBoolean() ? 0 : pages - 2000);
      int server = 1 + r.nextInt(servers); // slots start at 1
      if (!seen.add(page * (servers + 1) + server)) {
        continue;
      }
      long stamp = r.nextInt(4);
      copies.add(new long[] {server, page, stamp});
      newest[(int) page] = Math.max(newest[(int) page], stamp);
    }
    for (int round = 0; round < 2; round++) {
      Collections.shuffle(copies, r);
      LocationTable table = new LocationTable(pages, replicas);
      NewestCopies merge = new NewestCopies(table);
      for (long[] c : copies) {
        merge.offer((int) c[0], c[1], c[2]);
      }
      long discardedTotal = merge.discardedTotal();
      Set<Long> discarded = new HashSet<>();
      for (int s = 1; s <= servers; s++) {
        for (long p : merge.discarded(s)) {
          assertThat(discarded.add(p * (servers + 1) + s)).as("seed %d: discarded once", seed).isTrue();
        }
      }
      long kept = 0;
      for (long[] c : copies) {
        int server = (int) c[0];
        long page = c[1];
        boolean inTable = table.get(page, 0) == server || table.get(page, 1) == server;
        boolean isDiscarded = discarded.contains(page * (servers + 1) + server);
        assertThat(inTable ^ isDiscarded).as("seed %d: copy %d@%d kept xor discarded", seed, page, server).isTrue();
        if (inTable) {
          kept++;
          assertThat(c[2]).as("seed %d: kept copy of page %d is the newest", seed, page).isEqualTo(newest[(int) page]);
        }
      }
      int[] newestCopies = new int[(int) pages];
      for (long[] c : copies) {
        if (c[2] == newest[(int) c[1]]) {
          newestCopies[(int) c[1]]++;
        }
      }
      for (long p = 0; p < pages; p++) {
        int inTable = (table.get(p, 0) >= 0 ? 1 : 0) + (table.get(p, 1) >= 0 ? 1 : 0);
        assertThat(inTable).as("seed %d page %d", seed, p).isEqualTo(Math.min(replicas, newestCopies[(int) p]));
      }
      assertThat(kept + discardedTotal).isEqualTo(copies.size());
      assertThat(merge.discardedTotal()).as("taken once").isZero();
      assertThat(merge.maxStamp()).isEqualTo(Arrays.stream(newest).max().getAsLong());
    }
  }
}
