package io.vmd.migration.guest;

import io.netty.buffer.ByteBuf;

/**
 * The bytes an emulated guest's page holds: a function of the page number and how many times it was
 * written. Whoever knows the version of every page can check every byte of a migrated guest.
 */
public final class PageContent {
  public static final int PAGE = 4096;
  private static final int WORDS = PAGE / 8;

  private PageContent() {}

  static long word(long page, long version, int i) {
    long x = page * 0x9E3779B97F4A7C15L ^ (version + 1) * 0xC2B2AE3D27D4EB4FL ^ i * 0x165667B19E3779F9L;
    x ^= x >>> 29;
    return x;
  }

  /** Fills the page at {@code index} of {@code buf}. */
  public static void fill(ByteBuf buf, int index, long page, long version) {
    for (int i = 0; i < WORDS; i++) {
      buf.setLongLE(index + i * 8, word(page, version, i));
    }
  }

  /** Whether the page at {@code index} of {@code buf} holds exactly that page at that version. */
  public static boolean matches(ByteBuf buf, int index, long page, long version) {
    for (int i = 0; i < WORDS; i++) {
      if (buf.getLongLE(index + i * 8) != word(page, version, i)) {
        return false;
      }
    }
    return true;
  }
}
