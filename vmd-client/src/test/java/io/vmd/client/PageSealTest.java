package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.Pages;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A sealed page opens only as the page, stamp and namespace it was sealed as, and only untouched. */
class PageSealTest {
  private final Random random = new Random(11);
  private final byte[] key = new byte[32];
  private final ByteBuf page = Unpooled.directBuffer(Pages.PAGE_SIZE);
  private final ByteBuf sealed = Unpooled.directBuffer(PageSeal.RECORD);
  private final ByteBuf out = Unpooled.directBuffer(Pages.PAGE_SIZE);

  PageSealTest() {
    random.nextBytes(key);
    byte[] data = new byte[Pages.PAGE_SIZE];
    random.nextBytes(data);
    page.writeBytes(data);
  }

  @AfterEach
  void release() {
    page.release();
    sealed.release();
    out.release();
  }

  @Test
  void opensOnlyAsWhatItWasSealedAs() {
    PageSeal seal = new PageSeal(7, key);
    seal.seal(1234, 99, page, 0, sealed, 0);
    assertThat(ByteBufEq.slice(sealed, 0, Pages.PAGE_SIZE)).isNotEqualTo(ByteBufEq.slice(page, 0, Pages.PAGE_SIZE));
    assertThat(seal.open(1234, 99, sealed, 0, out, 0)).isTrue();
    assertThat(ByteBufEq.slice(out, 0, Pages.PAGE_SIZE)).isEqualTo(ByteBufEq.slice(page, 0, Pages.PAGE_SIZE));
    assertThat(seal.open(1235, 99, sealed, 0, out, 0)).as("another page index").isFalse();
    assertThat(seal.open(1234, 98, sealed, 0, out, 0)).as("another stamp").isFalse();
    assertThat(new PageSeal(8, key).open(1234, 99, sealed, 0, out, 0)).as("another namespace").isFalse();
    byte[] otherKey = key.clone();
    otherKey[0] ^= 1;
    assertThat(new PageSeal(7, otherKey).open(1234, 99, sealed, 0, out, 0)).as("another key").isFalse();
    for (int at : new int[] {0, 2048, Pages.PAGE_SIZE - 1, Pages.PAGE_SIZE, PageSeal.RECORD - 1}) {
      sealed.setByte(at, sealed.getByte(at) ^ 0x20);
      assertThat(seal.open(1234, 99, sealed, 0, out, 0)).as("byte %d flipped", at).isFalse();
      sealed.setByte(at, sealed.getByte(at) ^ 0x20);
    }
    assertThat(seal.open(1234, 99, sealed, 0, out, 0)).isTrue();
  }

  @Test
  void theLargestPageAndStampFitTheNonceAndRewritesSealDifferently() {
    PageSeal seal = new PageSeal(1, key);
    long last = PageSeal.MAX_PAGES - 1;
    seal.seal(last, Long.MAX_VALUE, page, 0, sealed, 0);
    assertThat(seal.open(last, Long.MAX_VALUE, sealed, 0, out, 0)).isTrue();
    ByteBuf again = Unpooled.buffer(PageSeal.RECORD);
    seal.seal(last, Long.MAX_VALUE - 1, page, 0, again, 0);
    assertThat(ByteBufEq.slice(again, 0, 64)).isNotEqualTo(ByteBufEq.slice(sealed, 0, 64));
    // Pages 2k and 2k+1 differ only in the nonce bit the stamp's top bit would take: distinct nonces.
    seal.seal(2, 5, page, 0, sealed, 0);
    seal.seal(3, 5, page, 0, again, 0);
    assertThat(ByteBufEq.slice(again, 0, 64)).isNotEqualTo(ByteBufEq.slice(sealed, 0, 64));
  }

  /** Byte arrays of buffer ranges, for AssertJ. */
  static final class ByteBufEq {
    static byte[] slice(ByteBuf b, int at, int n) {
      byte[] a = new byte[n];
      b.getBytes(at, a);
      return a;
    }
  }
}
