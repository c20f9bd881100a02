package io.vmd.migration.guest;

import io.netty.buffer.ByteBuf;
import io.vmd.client.VmdException;

/**
 * What a migration engine sees of a VM's memory: page contents, whether each page is resident or
 * swapped (and its swap slot, the VMD page index), and which pages changed since it last asked. The
 * emulated guest implements it here; a QEMU guest (pagemap + QMP) is the other implementation to come.
 */
public interface GuestMemory {
  /** {@link #swapSlot} of a page held in memory. */
  long RESIDENT = -1;

  int pages();

  /**
   * Copies page {@code page}'s current content to {@code dst} at {@code dstIndex}. A swapped page is
   * brought back into memory first (evicting another), as a hypervisor reading guest memory makes the
   * kernel do: what pre-copy and post-copy pay for a VM that swaps.
   */
  void copyPage(int page, ByteBuf dst, int dstIndex) throws VmdException;

  /** The page's swap slot, or {@link #RESIDENT}. */
  long swapSlot(int page);

  /** Returns the pages written since the previous call, as a bitmap, and clears it. */
  long[] takeDirty();

  /**
   * Returns the pages swapped in or out since the previous call, and clears it: a page's slot that a
   * destination was told about may since have been freed and reused.
   */
  long[] takeMoved();

  /** The swap slots in use now, as a bitmap over slot numbers. */
  long[] slotsInUse();
}
