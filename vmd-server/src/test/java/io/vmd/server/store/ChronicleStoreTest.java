package io.vmd.server.store;

import static org.assertj.core.api.Assertions.assertThat;

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
      store.write(1, 0, 300, pages(0, 300));
      store.write(2, 5, 10, pages(1000, 10));
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
        }
      }
      for (int i = 0; i < 10; i++) {
        assertThat(readBack(2, 5 + i)).isEqualTo(page(1000 + i));
      }
    }
  }
}
