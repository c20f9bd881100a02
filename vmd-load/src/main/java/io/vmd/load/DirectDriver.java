package io.vmd.load;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vmd.client.Namespace;
import io.vmd.client.VmdException;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;

/** VMD through {@code VmdClient} directly: the store path without the NBD gateway. */
public final class DirectDriver extends WindowedDriver {
  private final Namespace ns;
  private ByteBuf[] buffers;
  private long[] doneAt;
  private ArrayBlockingQueue<Integer> completed;

  public DirectDriver(Namespace ns) {
    this.ns = ns;
  }

  @Override
  public void fill(long bytes) throws Exception {
    super.fill(bytes);
    long stored = ns.storedPages();
    if (stored != bytes / Pages.PAGE_SIZE) {
      // Reads of pages never written are answered locally; the measurement would be hollow.
      throw new IllegalStateException("fill stored " + stored + " pages of " + bytes / Pages.PAGE_SIZE);
    }
  }

  @Override
  protected void begin(Workload w) {
    int qd = w.queueDepth();
    buffers = new ByteBuf[qd];
    doneAt = new long[qd];
    completed = new ArrayBlockingQueue<>(qd);
    for (int i = 0; i < qd; i++) {
      buffers[i] = PooledByteBufAllocator.DEFAULT.directBuffer(w.blockSize()).writeZero(w.blockSize());
    }
  }

  @Override
  protected void end(Workload w) {
    for (ByteBuf b : buffers) {
      b.release();
    }
  }

  @Override
  protected void issue(Workload w, int slot, long offset, boolean read) {
    int pages = w.blockSize() / Pages.PAGE_SIZE;
    long page = offset / Pages.PAGE_SIZE;
    ByteBuf b = buffers[slot];
    CompletableFuture<Void> f;
    if (read) {
      b.clear();
      f = ns.read(page, pages, b);
    } else {
      b.readerIndex(0).writerIndex(w.blockSize());
      f = ns.write(page, pages, b);
    }
    f.whenComplete((v, err) -> {
      doneAt[slot] = err == null ? System.nanoTime() : -1;
      completed.add(slot);
    });
  }

  @Override
  protected int awaitOne(Workload w) throws Exception {
    int slot = completed.take();
    if (doneAt[slot] < 0) {
      throw new VmdException(ErrorCode.INTERNAL, "a request to namespace " + ns.name() + " failed");
    }
    return slot;
  }

  @Override
  protected long finishedAt(int slot) {
    return doneAt[slot];
  }

  @Override
  public void close() {}
}
