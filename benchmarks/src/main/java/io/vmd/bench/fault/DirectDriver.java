package io.vmd.bench.fault;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vmd.client.Namespace;
import io.vmd.protocol.Pages;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;

/** VMD through {@code VmdClient} directly: the store path without the NBD gateway. */
final class DirectDriver implements Driver {
  private final Namespace ns;

  DirectDriver(Namespace ns) {
    this.ns = ns;
  }

  @Override
  public void fill(long bytes) throws Exception {
    run(new Workload("fill", 1 << 20, 8, 0, true), bytes, Long.MAX_VALUE, bytes);
    long stored = ns.locations().storedPages();
    if (stored != bytes / Pages.PAGE_SIZE) {
      // Reads of pages never written are answered locally; the measurement would be hollow.
      throw new IllegalStateException("fill stored " + stored + " pages of " + bytes / Pages.PAGE_SIZE);
    }
  }

  @Override
  public Result run(Workload w, long region, long nanos) throws Exception {
    return run(w, region, nanos, Long.MAX_VALUE);
  }

  private Result run(Workload w, long region, long nanos, long maxBytes) throws Exception {
    Result r = new Result();
    int qd = w.queueDepth();
    int pages = w.blockSize() / Pages.PAGE_SIZE;
    ByteBuf[] buffers = new ByteBuf[qd];
    long[] sentAt = new long[qd];
    long[] doneAt = new long[qd];
    ArrayBlockingQueue<Integer> completed = new ArrayBlockingQueue<>(qd);
    for (int i = 0; i < qd; i++) {
      buffers[i] = PooledByteBufAllocator.DEFAULT.directBuffer(w.blockSize()).writeZero(w.blockSize());
    }
    try {
      SplittableRandom random = new SplittableRandom(42);
      long blocks = region / w.blockSize();
      long next = 0;
      long issued = 0;
      long start = System.nanoTime();
      long deadline = start + Math.min(nanos, Long.MAX_VALUE / 4); // no overflow for "until done"
      int inFlight = 0;
      boolean stop = false;
      int[] free = new int[qd];
      int nfree = qd;
      for (int i = 0; i < qd; i++) {
        free[i] = i;
      }
      while (true) {
        while (!stop && nfree > 0) {
          int slot = free[--nfree];
          long page = (w.sequential() ? next++ % blocks : random.nextLong(blocks)) * pages;
          ByteBuf b = buffers[slot];
          CompletableFuture<Void> f;
          sentAt[slot] = System.nanoTime();
          if (random.nextInt(100) < w.readPercent()) {
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
          inFlight++;
          issued += w.blockSize();
          stop = issued >= maxBytes;
        }
        if (inFlight == 0) {
          break;
        }
        int slot = completed.take();
        if (doneAt[slot] < 0) {
          throw new IllegalStateException("a request to namespace " + ns.name() + " failed");
        }
        r.latencyNanos.recordValue(doneAt[slot] - sentAt[slot]);
        r.operations++;
        r.bytes += w.blockSize();
        inFlight--;
        free[nfree++] = slot;
        if (System.nanoTime() >= deadline) {
          stop = true;
        }
      }
      r.elapsedNanos = System.nanoTime() - start;
      return r;
    } finally {
      for (ByteBuf b : buffers) {
        b.release();
      }
    }
  }

  @Override
  public void close() {}
}
