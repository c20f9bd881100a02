package io.vmd.migration.engine;

/** The migration stream between a source and a destination manager: one length-prefixed frame each. */
final class Frames {
  /** Source → destination: int pages, int resident limit, byte policy (ordinal), string swap namespace. */
  static final byte HELLO = 1;
  /** Source → destination: byte kind, int page, 4096 bytes. */
  static final byte PAGE = 2;
  /** Source → destination: int n, then n × (int page, long slot): pages left in the VMD. */
  static final byte SWAPPED = 3;
  /**
   * Source → destination: the VM stopped. int words + bitmap of pages changed since sent; int words +
   * bitmap of swap slots the source still uses; int n + n × (int page, long slot) of changed pages that
   * are in the VMD now. Agile only fills them.
   */
  static final byte STOP = 4;
  /** Destination → source: the VM runs at the destination. */
  static final byte RESUMED = 5;
  /** Destination → source: int page, needed now. */
  static final byte DEMAND = 6;
  /** Source → destination: every page the destination lacks has been sent. */
  static final byte DONE = 7;
  /** Destination → source: nothing is absent any more; the migration is over. */
  static final byte COMPLETE = 8;
  /** Either way: string message; the other side gives up. */
  static final byte ABORT = 9;
  /** Destination → source: the incoming VM's memory is set up; the migration may start. */
  static final byte READY = 10;

  static final byte KIND_LIVE = 0;
  static final byte KIND_STOP_COPY = 1;
  static final byte KIND_PUSH = 2;
  static final byte KIND_DEMAND = 3;

  static final int MAX_FRAME = 64 << 20;


  private Frames() {}
}
