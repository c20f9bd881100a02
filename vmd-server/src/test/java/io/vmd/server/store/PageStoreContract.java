package io.vmd.server.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.Pages;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The contract every {@link PageStore} engine must keep; one subclass per engine. */
abstract class PageStoreContract {
  static final int CAPACITY_PAGES = 600;
  PageStore store;

  abstract PageStore open(long capacityBytes);

  @BeforeEach
  void setUp() {
    store = open((long) CAPACITY_PAGES * Pages.PAGE_SIZE);
  }

  @AfterEach
  void tearDown() {
    store.close();
  }

  static ByteBuf page(long seed) {
    ByteBuf b = Unpooled.buffer(Pages.PAGE_SIZE);
    Random r = new Random(seed);
    byte[] bytes = new byte[Pages.PAGE_SIZE];
    r.nextBytes(bytes);
    return b.writeBytes(bytes);
  }

  static ByteBuf pages(long seed, int count) {
    ByteBuf b = Unpooled.buffer(count * Pages.PAGE_SIZE);
    for (int i = 0; i < count; i++) {
      b.writeBytes(page(seed + i));
    }
    return b;
  }

  ByteBuf readBack(int ns, long page) {
    ByteBuf dst = Unpooled.buffer(Pages.PAGE_SIZE);
    return store.read(ns, page, dst) != PageStore.NO_STAMP ? dst : null;
  }

  /** The stamp {@link PageStore#read} returns for the page. */
  long stampOf(int ns, long page) {
    return store.read(ns, page, Unpooled.buffer(Pages.PAGE_SIZE));
  }

  @Test
  void unwrittenPageIsAbsentAndDstUntouched() {
    ByteBuf dst = Unpooled.buffer(Pages.PAGE_SIZE);
    assertThat(store.read(1, 7, dst)).isEqualTo(PageStore.NO_STAMP);
    assertThat(dst.writerIndex()).isZero();
    assertThat(store.contains(1, 7)).isFalse();
    assertThat(store.usedPages()).isZero();
  }

  @Test
  void randomKeysWriteReadOverwriteDelete() {
    long seed = System.nanoTime();
    System.out.println("PageStoreContract seed " + seed);
    Random r = new Random(seed);
    Map<Long, Long> model = new HashMap<>(); // key -> content seed, which is also its stamp
    for (int step = 0; step < 5000; step++) {
      int ns = 1 + r.nextInt(3);
      long page = r.nextInt(400);
      long key = PageStore.key(ns, page);
      int action = r.nextInt(10);
      if (action < 5) {
        long content = r.nextLong() >>> 1;
        boolean fits = model.containsKey(key) || model.size() < CAPACITY_PAGES;
        assertThat(store.write(ns, page, 1, page(content), content)).as("seed %d step %d", seed, step).isEqualTo(fits);
        if (fits) {
          model.put(key, content);
        }
      } else if (action < 8) {
        ByteBuf got = readBack(ns, page);
        Long content = model.get(key);
        if (content == null) {
          assertThat(got).as("seed %d step %d", seed, step).isNull();
          assertThat(stampOf(ns, page)).isEqualTo(PageStore.NO_STAMP);
        } else {
          assertThat(got).as("seed %d step %d", seed, step).isEqualTo(page(content));
          assertThat(stampOf(ns, page)).as("seed %d step %d", seed, step).isEqualTo(content);
        }
      } else {
        long deleted = store.delete(ns, page, 1);
        assertThat(deleted).isEqualTo(model.remove(key) == null ? 0 : 1);
      }
      assertThat(store.usedPages()).isEqualTo(model.size());
    }
    for (int ns = 1; ns <= 3; ns++) {
      int n = ns;
      long expected = model.keySet().stream().filter(k -> PageStore.namespaceOf(k) == n).count();
      assertThat(store.pageCount(ns)).isEqualTo(expected);
      long[] listed = store.list(ns);
      assertThat(listed).hasSize((int) (2 * expected));
      for (int i = 0; i < listed.length; i += 2) {
        assertThat(model.get(PageStore.key(ns, listed[i]))).as("seed %d", seed).isEqualTo(listed[i + 1]);
      }
    }
  }

  /**
   * A listing in small batches while pages come and go between them: every page stored throughout is
   * listed exactly once (a LIST streamed to a slow client must not miss a page: it would read as a hole).
   */
  @Test
  void aListingInBatchesListsEveryPageThatStaysExactlyOnce() {
    for (int p = 0; p < 300; p++) {
      assertThat(store.write(1, p, 1, page(p), 7)).isTrue();
    }
    for (int p = 1000; p < 1100; p++) {
      assertThat(store.write(1, p, 1, page(p), 7)).isTrue();
    }
    for (int p = 0; p < 50; p++) {
      assertThat(store.write(2, p, 1, page(p), 7)).isTrue();
    }
    Map<Long, Integer> seen = new HashMap<>();
    long cursor = 0;
    int churn = 1000;
    int fresh = 2000;
    int batches = 0;
    do {
      cursor = store.list(1, cursor, 7, (page, stamp) -> seen.merge(page, 1, Integer::sum));
      batches++;
      // Between batches: two pages go, two new ones come.
      for (int k = 0; k < 2 && churn < 1100; k++, churn++) {
        store.delete(1, churn, 1);
      }
      for (int k = 0; k < 2 && store.usedPages() < CAPACITY_PAGES; k++, fresh++) {
        store.write(1, fresh, 1, page(fresh), 8);
      }
    } while (cursor != PageStore.LIST_END);
    assertThat(batches).isGreaterThan(1);
    for (long p = 0; p < 300; p++) {
      assertThat(seen.get(p)).as("page %d, stored throughout", p).isEqualTo(1);
    }
    for (Map.Entry<Long, Integer> e : seen.entrySet()) {
      long p = e.getKey();
      assertThat(p < 300 || (p >= 1000 && p < 1100) || (p >= 2000 && p < fresh)).as("page %d", p).isTrue();
      assertThat(e.getValue()).as("page %d listed once", p).isEqualTo(1);
    }
  }

  @Test
  void batchWriteStoresConsecutivePages() {
    ByteBuf src = pages(100, 16);
    assertThat(store.write(2, 1000, 16, src, 7)).isTrue();
    assertThat(src.readerIndex()).isZero();
    for (int i = 0; i < 16; i++) {
      assertThat(readBack(2, 1000 + i)).isEqualTo(page(100 + i));
    }
    assertThat(store.pageCount(2)).isEqualTo(16);
  }

  @Test
  void fullStoreRefusesWholeBatchAndKeepsEverything() {
    assertThat(store.write(1, 0, CAPACITY_PAGES - 2, pages(0, CAPACITY_PAGES - 2), 7)).isTrue();
    // Three new pages do not fit in the two free slots: nothing of the batch is written.
    assertThat(store.write(1, CAPACITY_PAGES, 3, pages(5000, 3), 7)).isFalse();
    assertThat(store.usedPages()).isEqualTo(CAPACITY_PAGES - 2);
    assertThat(store.contains(1, CAPACITY_PAGES)).isFalse();
    // Rewrites plus exactly two new pages fit.
    assertThat(store.write(1, CAPACITY_PAGES - 4, 4, pages(7000, 4), 7)).isTrue();
    assertThat(store.usedPages()).isEqualTo(CAPACITY_PAGES);
    assertThat(store.write(9, 0, 1, page(1), 7)).isFalse();
    // Rewriting a stored page still works when full.
    assertThat(store.write(1, 3, 1, page(42), 7)).isTrue();
    for (int i = 0; i < CAPACITY_PAGES; i++) {
      long content = i == 3 ? 42 : i >= CAPACITY_PAGES - 4 ? 7000 + i - (CAPACITY_PAGES - 4) : i;
      assertThat(readBack(1, i)).as("page %d", i).isEqualTo(page(content));
    }
    // Deleting makes room again.
    assertThat(store.delete(1, 0, 10)).isEqualTo(10);
    assertThat(store.write(9, 0, 10, pages(1, 10), 7)).isTrue();
  }

  @Test
  void deleteRangeAndNamespace() {
    store.write(1, 0, 50, pages(0, 50), 7);
    store.write(2, 0, 50, pages(100, 50), 7);
    assertThat(store.delete(1, 10, 20)).isEqualTo(20);
    assertThat(store.delete(1, 0, Long.MAX_VALUE / 2)).isEqualTo(30);
    assertThat(store.pageCount(1)).isZero();
    assertThat(store.deleteNamespace(2)).isEqualTo(50);
    assertThat(store.usedPages()).isZero();
    assertThat(store.list(2)).isEmpty();
  }
}
