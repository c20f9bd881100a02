package io.vmd.server.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.protocol.Pages;
import org.junit.jupiter.api.Test;

class OffHeapSlabStoreTest extends PageStoreContract {
  @Override
  PageStore open(long capacityBytes) {
    return new OffHeapSlabStore(capacityBytes);
  }

  @Test
  void memoryIsTakenOnWriteAndGivenBackOnDelete() {
    OffHeapSlabStore slab = (OffHeapSlabStore) store;
    assertThat(slab.allocatedBytes()).isZero();
    slab.write(1, 0, 1, page(1), 1);
    assertThat(slab.allocatedBytes()).isEqualTo(OffHeapSlabStore.CHUNK_SLOTS * (long) Pages.PAGE_SIZE);
    slab.write(1, 1, 599, pages(2, 599), 1);
    assertThat(slab.allocatedBytes()).isEqualTo(3L * OffHeapSlabStore.CHUNK_SLOTS * Pages.PAGE_SIZE);
    slab.delete(1, 0, 600);
    // Every chunk is empty: all but one spare went back.
    assertThat(slab.allocatedBytes()).isEqualTo(OffHeapSlabStore.CHUNK_SLOTS * (long) Pages.PAGE_SIZE);
  }
}
