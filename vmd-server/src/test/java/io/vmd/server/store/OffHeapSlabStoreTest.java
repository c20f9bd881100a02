package io.vmd.server.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.Pages;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
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

  /** A reply holding pages lent by the store, and the bytes they had when lent. */
  private record Lent(CompositeByteBuf bytes, PinnedPages pins, byte[] expected) {}

  private Lent lend(OffHeapSlabStore slab, int ns, long first, int count) {
    PinnedPages pins = PinnedPages.of(count);
    ByteBuf copy = Unpooled.buffer(count * Pages.PAGE_SIZE);
    for (int i = 0; i < count; i++) {
      assertThat(slab.readPinned(ns, first + i, pins)).isNotEqualTo(PageStore.NO_STAMP);
      slab.read(ns, first + i, copy);
    }
    pins.finish();
    // What the reply would send: its views, in order.
    CompositeByteBuf reply = Unpooled.compositeBuffer(count + 2);
    for (int i = 0; i < pins.views(); i++) {
      reply.addComponent(true, pins.takeView(i));
    }
    assertThat((long) reply.readableBytes()).isEqualTo(pins.bytes());
    return new Lent(reply, pins, ByteBufUtil.getBytes(copy));
  }

  @Test
  void aPinnedSlotIsNeverReusedWhileAReplyHoldsIt() {
    OffHeapSlabStore slab = (OffHeapSlabStore) store;
    slab.write(1, 0, 4, pages(100, 4), 1);
    Lent reply = lend(slab, 1, 0, 4);
    assertThat(reply.bytes().numComponents()).as("neighbouring slots are one view").isEqualTo(1);
    // A trim, then another namespace fills every free slot: none of it may land in the lent slots.
    assertThat(slab.delete(1, 0, 4)).isEqualTo(4);
    assertThat(slab.write(2, 0, CAPACITY_PAGES, pages(200, CAPACITY_PAGES), 1))
        .as("the lent slots are not free yet").isFalse();
    assertThat(slab.write(2, 0, CAPACITY_PAGES - 4, pages(200, CAPACITY_PAGES - 4), 1)).isTrue();
    assertThat(ByteBufUtil.getBytes(reply.bytes())).isEqualTo(reply.expected());
    assertThat(slab.retiredSlots()).isEqualTo(4);
    reply.pins().unpin();
    reply.bytes().release();
    assertThat(slab.retiredSlots()).isZero();
    assertThat(slab.write(2, CAPACITY_PAGES - 4, 4, pages(300, 4), 1)).as("freed by the last unpin").isTrue();
  }

  @Test
  void aPageOverwrittenWhileLentMovesAndTheReplyKeepsTheOldBytes() {
    OffHeapSlabStore slab = (OffHeapSlabStore) store;
    slab.write(1, 7, 1, page(1), 1);
    Lent first = lend(slab, 1, 7, 1);
    Lent second = lend(slab, 1, 7, 1);
    slab.write(1, 7, 1, page(2), 2);
    assertThat(ByteBufUtil.getBytes(readBack(1, 7))).isEqualTo(ByteBufUtil.getBytes(page(2)));
    assertThat(stampOf(1, 7)).isEqualTo(2);
    assertThat(ByteBufUtil.getBytes(first.bytes())).isEqualTo(ByteBufUtil.getBytes(page(1)));
    first.pins().unpin();
    assertThat(slab.retiredSlots()).as("still lent to the second reply").isEqualTo(1);
    assertThat(ByteBufUtil.getBytes(second.bytes())).isEqualTo(ByteBufUtil.getBytes(page(1)));
    second.pins().unpin();
    assertThat(slab.retiredSlots()).isZero();
    assertThat(slab.usedPages()).isEqualTo(1);
    first.bytes().release();
    second.bytes().release();
  }

  @Test
  void lentPagesKeepTheirBytesUnderRandomWritesTrimsAndUnpins() {
    long seed = System.nanoTime();
    System.out.println("lentPagesKeepTheirBytesUnderRandomWritesTrimsAndUnpins seed=" + seed);
    Random random = new Random(seed);
    OffHeapSlabStore slab = (OffHeapSlabStore) store;
    Map<Long, Long> model = new HashMap<>(); // key (namespace, page) -> seed of its bytes
    List<Lent> out = new ArrayList<>();
    for (int step = 0; step < 5_000; step++) {
      int ns = 1 + random.nextInt(2);
      long page = random.nextInt(64);
      int count = 1 + random.nextInt(8);
      switch (random.nextInt(4)) {
        case 0 -> {
          long content = random.nextLong();
          if (slab.write(ns, page, count, pages(content, count), step)) {
            for (int i = 0; i < count; i++) {
              model.put(PageStore.key(ns, page + i), content + i);
            }
          }
        }
        case 1 -> {
          slab.delete(ns, page, count);
          for (int i = 0; i < count; i++) {
            model.remove(PageStore.key(ns, page + i));
          }
        }
        case 2 -> {
          if (model.containsKey(PageStore.key(ns, page))) {
            out.add(lend(slab, ns, page, 1));
          }
        }
        default -> {
          if (!out.isEmpty()) {
            Lent l = out.remove(random.nextInt(out.size()));
            assertThat(ByteBufUtil.getBytes(l.bytes())).as("seed %d step %d", seed, step).isEqualTo(l.expected());
            l.pins().unpin();
            l.bytes().release();
          }
        }
      }
      Long expected = model.get(PageStore.key(ns, page));
      ByteBuf now = readBack(ns, page);
      if (expected == null) {
        assertThat(now).as("seed %d step %d", seed, step).isNull();
      } else {
        assertThat(ByteBufUtil.getBytes(now)).as("seed %d step %d", seed, step)
            .isEqualTo(ByteBufUtil.getBytes(page(expected)));
      }
    }
    for (Lent l : out) {
      assertThat(ByteBufUtil.getBytes(l.bytes())).as("seed %d", seed).isEqualTo(l.expected());
      l.pins().unpin();
      l.bytes().release();
    }
    assertThat(slab.retiredSlots()).isZero();
    assertThat(slab.usedPages()).isEqualTo(model.size());
  }
}
