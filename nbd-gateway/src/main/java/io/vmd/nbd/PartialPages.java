package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vmd.client.Namespace;
import io.vmd.protocol.Pages;
import java.util.concurrent.CompletableFuture;

/**
 * Writes that do not cover whole pages, and runs of zero pages: the cluster stores only whole pages,
 * so a partial page is read, changed in place and written back. Callers hold the pages' place in the
 * export's order while this runs.
 */
final class PartialPages {
  /** Pages of written zeros sent in one write. */
  private static final int ZERO_RUN = 256;

  private PartialPages() {}

  /**
   * Reads the partial first and last pages of [first, first + count) into {@code buf}, lays
   * {@code data} over them at byte {@code offset} of the export, and writes the whole run back.
   */
  static CompletableFuture<Void> readModifyWrite(Namespace ns, long first, int count, long offset, ByteBuf data,
      ByteBuf buf) {
    int from = (int) (offset & (Pages.PAGE_SIZE - 1));
    int length = data != null ? data.readableBytes() : 0;
    buf.writerIndex(count * Pages.PAGE_SIZE);
    CompletableFuture<Void> head = ns.read(first, 1, buf.slice(0, Pages.PAGE_SIZE).writerIndex(0));
    CompletableFuture<Void> tail = count == 1
        ? CompletableFuture.completedFuture(null)
        : ns.read(first + count - 1, 1, buf.slice((count - 1) * Pages.PAGE_SIZE, Pages.PAGE_SIZE).writerIndex(0));
    return CompletableFuture.allOf(head, tail).thenCompose(v -> {
      if (data != null) {
        buf.setBytes(from, data, data.readerIndex(), length);
      }
      return ns.write(first, count, buf);
    });
  }

  /** Zeros bytes [from, to) of one page by read-modify-write. */
  static CompletableFuture<Void> zero(Namespace ns, ByteBufAllocator alloc, long page, long from, long to) {
    ByteBuf buf = alloc.directBuffer(Pages.PAGE_SIZE);
    ByteBuf zeros = alloc.buffer((int) (to - from)).writeZero((int) (to - from));
    return readModifyWrite(ns, page, 1, from, zeros, buf).whenComplete((v, err) -> {
      buf.release();
      zeros.release();
    });
  }

  /** Writes {@code count} pages of zeros from {@code first} (NO_HOLE: zeros that stay allocated). */
  static CompletableFuture<Void> writeZeroPages(Namespace ns, ByteBufAllocator alloc, long first, long count) {
    CompletableFuture<Void> all = CompletableFuture.completedFuture(null);
    for (long at = first; at < first + count; at += ZERO_RUN) {
      int n = (int) Math.min(ZERO_RUN, first + count - at);
      long page = at;
      all = all.thenCompose(v -> {
        ByteBuf zeros = alloc.directBuffer(n * Pages.PAGE_SIZE).writeZero(n * Pages.PAGE_SIZE);
        return ns.write(page, n, zeros).whenComplete((x, err) -> zeros.release());
      });
    }
    return all;
  }
}
