package io.vmd.server.store;

import static org.assertj.core.api.Assertions.assertThat;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChronicleStoreTest extends PageStoreContract {
  @Override
  PageStore open(long capacityBytes) {
    return ChronicleStore.inMemory(capacityBytes);
  }

  @Nested
  class Persisted extends PageStoreContract {
    @TempDir Path dir;

    @Override
    PageStore open(long capacityBytes) {
      return ChronicleStore.persisted(capacityBytes, dir);
    }

    @Test
    void restartKeepsEveryPage() {
      long capacity = (long) CAPACITY_PAGES * 4096;
      store.write(1, 0, 300, pages(0, 300), 11);
      store.write(2, 5, 10, pages(1000, 10), 1L << 50);
      store.write(1, 7, 1, page(7), 12);
      store.delete(1, 100, 50);
      store.close();
      store = ChronicleStore.persisted(capacity, dir);
      assertThat(store.usedPages()).isEqualTo(260);
      assertThat(store.pageCount(1)).isEqualTo(250);
      assertThat(store.pageCount(2)).isEqualTo(10);
      for (int i = 0; i < 300; i++) {
        if (i >= 100 && i < 150) {
          assertThat(readBack(1, i)).isNull();
        } else {
          assertThat(readBack(1, i)).as("page %d", i).isEqualTo(page(i));
          assertThat(stampOf(1, i)).isEqualTo(i == 7 ? 12 : 11);
        }
      }
      for (int i = 0; i < 10; i++) {
        assertThat(readBack(2, 5 + i)).isEqualTo(page(1000 + i));
        assertThat(stampOf(2, 5 + i)).isEqualTo(1L << 50);
      }
      assertThat(store.list(2)).contains(5L, 1L << 50);
    }

    @Test
    void refusesAFileOfTheFormatWithoutStamps(@TempDir Path old) throws Exception {
      Files.write(old.resolve("pages.cmap"), new byte[] {1});
      assertThatThrownBy(() -> ChronicleStore.persisted((long) CAPACITY_PAGES * 4096, old))
          .hasMessageContaining("pages.cmap").hasMessageContaining("Move it away");
    }
  }
}
