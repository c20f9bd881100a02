package io.vmd.migration.swap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads {@code /proc/PID/pagemap}: one 64-bit entry per virtual page, which tells the source of a
 * migration which pages of a VM process are in memory and which are swapped, and where (Linux
 * Documentation/admin-guide/mm/pagemap.rst). Entries are plain longs, decoded by the static
 * accessors: no object per page.
 *
 * <ul>
 *   <li>bit 63: present in RAM; bits 0–54 the page frame number (zero unless CAP_SYS_ADMIN)</li>
 *   <li>bit 62: swapped; bits 0–4 the swap type (which swap area), bits 5–54 the offset in it</li>
 *   <li>bit 61: file-backed or shared anonymous; bit 56: mapped exclusively; bit 55: soft-dirty</li>
 * </ul>
 */
public final class Pagemap {
  public static final int PAGE = 4096;
  private static final long PFN_MASK = (1L << 55) - 1;

  private Pagemap() {}

  /** The entries of {@code pages} virtual pages from {@code address} (rounded down to a page). */
  public static long[] read(long pid, long address, int pages) throws IOException {
    return read(Path.of("/proc", String.valueOf(pid), "pagemap"), address, pages);
  }

  static long[] read(Path pagemap, long address, int pages) throws IOException {
    long[] entries = new long[pages];
    ByteBuffer buf = ByteBuffer.allocate(Math.min(pages, 8192) * 8).order(ByteOrder.nativeOrder());
    try (FileChannel ch = FileChannel.open(pagemap, StandardOpenOption.READ)) {
      long at = (address / PAGE) * 8;
      int done = 0;
      while (done < pages) {
        buf.clear().limit(Math.min(pages - done, buf.capacity() / 8) * 8);
        while (buf.hasRemaining()) {
          int n = ch.read(buf, at + (long) done * 8 + buf.position());
          if (n < 0) {
            throw new IOException("pagemap of " + pagemap + " ended at page " + (done + buf.position() / 8));
          }
        }
        buf.flip();
        while (buf.hasRemaining()) {
          entries[done++] = buf.getLong();
        }
      }
    }
    return entries;
  }

  public static boolean present(long entry) {
    return entry < 0;
  }

  public static boolean swapped(long entry) {
    return (entry & (1L << 62)) != 0;
  }

  public static boolean fileOrShared(long entry) {
    return (entry & (1L << 61)) != 0;
  }

  public static boolean exclusive(long entry) {
    return (entry & (1L << 56)) != 0;
  }

  public static boolean softDirty(long entry) {
    return (entry & (1L << 55)) != 0;
  }

  /** The swap area of a swapped page (its index in /proc/swaps order). */
  public static int swapType(long entry) {
    return (int) (entry & 0x1f);
  }

  /** The page's offset in its swap area, in pages: the VMD page index when the area is a namespace. */
  public static long swapOffset(long entry) {
    return (entry & PFN_MASK) >>> 5;
  }

  /** The physical frame of a present page (zero without CAP_SYS_ADMIN). */
  public static long frame(long entry) {
    return entry & PFN_MASK;
  }

  /** How many entries are present and how many swapped. */
  public record Counts(int present, int swapped, int neither) {}

  public static Counts count(long[] entries) {
    int present = 0;
    int swapped = 0;
    for (long e : entries) {
      if (present(e)) {
        present++;
      } else if (swapped(e)) {
        swapped++;
      }
    }
    return new Counts(present, swapped, entries.length - present - swapped);
  }
}
