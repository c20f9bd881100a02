package io.vmd.migration.engine;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.vmd.client.VmdException;
import io.vmd.common.HostPort;
import io.vmd.common.Transports;
import io.vmd.migration.guest.GuestMemory;
import io.vmd.migration.guest.PageContent;
import io.vmd.migration.guest.Workload;
import io.vmd.migration.model.Policy;
import io.vmd.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sending migration manager: moves one VM's memory to a {@link MigrationDestination} by one of
 * three policies, over one TCP stream paced by a token bucket.
 *
 * <ul>
 *   <li><b>Pre-copy</b>: every page live, then rounds of the pages dirtied meanwhile until a stop rule
 *       holds (Xen: over 3M sent, under 50 pages left, 30 rounds; KVM: the rest fits the allowed
 *       downtime), then the VM stops and the rest goes (stop-and-copy). Swapped pages are read back
 *       from the VMD to be sent.</li>
 *   <li><b>Post-copy</b>: the VM stops at once and resumes at the destination with nothing; every page
 *       is pushed in order while the destination's faults are answered first.</li>
 *   <li><b>Agile</b>: one live round sends resident pages in full and swapped ones as their swap slot
 *       only; then the VM stops, the dirty bitmap goes with the stop frame, the VM resumes and the
 *       dirtied pages are pushed (faults first); everything else the destination reads from the VMD.</li>
 * </ul>
 */
public final class MigrationSource {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationSource.class);
  private static final int PAGE_FRAME = 4 + 1 + 1 + 4 + PageContent.PAGE;
  private static final int KVM_MAX_ROUNDS = 100;

  /** What the source saw: timing, rounds, bytes by kind. */
  public record Result(Policy policy, long startNanos, long pausedNanos, long resumedNanos, long endNanos, int rounds,
      long fullPageBytes, long offsetBytes, long pushedBytes, long demandBytes, long demands) {}

  private final GuestMemory guest;
  private final Workload workload;
  private final String swapNamespace;
  private final int residentLimit;
  private final MigrationOptions options;
  private final TokenBucket bucket;
  private final LinkedBlockingQueue<Integer> demands = new LinkedBlockingQueue<>();
  private final CompletableFuture<Void> ready = new CompletableFuture<>();
  private final CompletableFuture<Void> resumed = new CompletableFuture<>();
  private final CompletableFuture<Void> complete = new CompletableFuture<>();
  private Channel channel;
  private long fullPageBytes;
  private long offsetBytes;
  private long pushedBytes;
  private long demandBytes;
  private long demandCount;

  private MigrationSource(GuestMemory guest, Workload workload, String swapNamespace, int residentLimit,
      MigrationOptions options) {
    this.guest = guest;
    this.workload = workload;
    this.swapNamespace = swapNamespace;
    this.residentLimit = residentLimit;
    this.options = options;
    this.bucket = new TokenBucket(options.bytesPerSecond(), 256 << 10);
  }

  /**
   * Migrates {@code guest}, whose program is {@code workload}, to the destination listening at
   * {@code to}; returns when nothing of the VM is left here.
   */
  public static Result migrate(GuestMemory guest, Workload workload, String swapNamespace, int residentLimit,
      HostPort to, MigrationOptions options) throws Exception {
    return new MigrationSource(guest, workload, swapNamespace, residentLimit, options).run(to);
  }

  private Result run(HostPort to) throws Exception {
    EventLoopGroup group = Transports.group(1, "vmd-migration-out");
    try {
      channel = new Bootstrap().group(group).channel(Transports.clientChannel())
          .option(ChannelOption.TCP_NODELAY, true)
          .option(ChannelOption.ALLOCATOR, Transports.allocator())
          .handler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
              ch.pipeline().addLast(new LengthFieldBasedFrameDecoder(Frames.MAX_FRAME, 0, 4, 0, 4))
                  .addLast(new Replies());
            }
          }).connect(to.toSocketAddress()).sync().channel();
      return migrate();
    } finally {
      if (channel != null) {
        channel.close().syncUninterruptibly();
      }
      Transports.shutdown(group, 1, "migration source");
    }
  }

  private Result migrate() throws Exception {
    Policy policy = options.policy();
    byte[] name = swapNamespace.getBytes(StandardCharsets.UTF_8);
    send(Frames.HELLO, 4 + 4 + 1 + 4 + name.length, b -> b.writeInt(guest.pages()).writeInt(residentLimit)
        .writeByte(policy.ordinal())
        .writeInt(name.length).writeBytes(name), false);
    // The destination sets up the VM's memory first, as an incoming QEMU does before migration starts.
    await(ready, "the destination to set up the VM");
    long start = System.nanoTime();
    int pages = guest.pages();
    int rounds = 0;
    long[] toPush;
    long paused;
    guest.takeDirty(); // tracking starts now
    guest.takeMoved();
    switch (policy) {
      case XEN_PRE_COPY, KVM_PRE_COPY -> {
        long[] all = new long[(pages + 63) >>> 6];
        setAll(all, pages);
        long sent = sendPages(all, Frames.KIND_LIVE);
        rounds = 1;
        long[] dirty;
        while (true) {
          dirty = guest.takeDirty();
          long n = count(dirty);
          boolean stop = policy == Policy.XEN_PRE_COPY
              ? sent > 3L * pages * PageContent.PAGE || n < 50 || rounds >= 30
              : n * (double) PageContent.PAGE / options.bytesPerSecond()
                  <= options.maxDowntime().toNanos() / 1e9 || rounds >= KVM_MAX_ROUNDS;
          if (stop) {
            break;
          }
          sent += sendPages(dirty, Frames.KIND_LIVE);
          rounds++;
        }
        workload.pause();
        paused = System.nanoTime();
        or(dirty, guest.takeDirty());
        sendPages(dirty, Frames.KIND_STOP_COPY);
        sendStop(new long[0], new long[0], 0, null, null);
        toPush = new long[(pages + 63) >>> 6];
      }
      case POST_COPY -> {
        workload.pause();
        paused = System.nanoTime();
        sendStop(new long[0], new long[0], 0, null, null);
        toPush = new long[(pages + 63) >>> 6];
        setAll(toPush, pages);
      }
      case AGILE -> {
        rounds = 1;
        liveRoundWithOffsets();
        workload.pause();
        paused = System.nanoTime();
        // Written or moved during the round: what the destination has of these is stale. Those
        // swapped out now are in the VMD as they are: their new slot goes with the stop frame; the
        // rest are pushed from memory. The source never reads the VMD (it is not its to use now).
        long[] changed = guest.takeDirty();
        or(changed, guest.takeMoved());
        toPush = changed.clone();
        int[] swappedPages = new int[(int) count(changed)];
        long[] swappedSlots = new long[swappedPages.length];
        int n = 0;
        for (int w = 0; w < changed.length; w++) {
          long bits = changed[w];
          while (bits != 0) {
            int p = (w << 6) + Long.numberOfTrailingZeros(bits);
            bits &= bits - 1;
            long s = guest.swapSlot(p);
            if (s != GuestMemory.RESIDENT) {
              swappedPages[n] = p;
              swappedSlots[n++] = s;
              clear(toPush, p);
            }
          }
        }
        sendStop(changed, guest.slotsInUse(), n, swappedPages, swappedSlots);
      }
      default -> throw new IllegalArgumentException("policy " + policy);
    }
    await(resumed, "the destination to resume the VM");
    long resumedAt = System.nanoTime();
    push(toPush);
    send(Frames.DONE, 0, null, false);
    await(complete, "the destination to hold every page");
    long end = System.nanoTime();
    LOG.info("{} migration done in {} ms ({} rounds, {} demanded)", policy.label(), (end - start) / 1_000_000, rounds,
        demandCount);
    return new Result(policy, start, paused, resumedAt, end, rounds, fullPageBytes, offsetBytes, pushedBytes,
        demandBytes, demandCount);
  }

  /** Agile's live round: resident pages in full, swapped ones as (page, slot) in batches. */
  private void liveRoundWithOffsets() throws Exception {
    int batch = 1024;
    int[] pagesOut = new int[batch];
    long[] slots = new long[batch];
    int n = 0;
    for (int p = 0; p < guest.pages(); p++) {
      long s = guest.swapSlot(p);
      if (s == GuestMemory.RESIDENT) {
        sendPage(p, Frames.KIND_LIVE);
      } else {
        pagesOut[n] = p;
        slots[n++] = s;
        if (n == batch) {
          sendSwapped(pagesOut, slots, n);
          n = 0;
        }
      }
    }
    if (n > 0) {
      sendSwapped(pagesOut, slots, n);
    }
  }

  private void sendSwapped(int[] pagesOut, long[] slots, int n) throws Exception {
    int size = 4 + n * 12;
    offsetBytes += size;
    send(Frames.SWAPPED, size, b -> {
      b.writeInt(n);
      for (int i = 0; i < n; i++) {
        b.writeInt(pagesOut[i]).writeLong(slots[i]);
      }
    }, true);
  }

  /** Pushes the pages of {@code need}, in order, answering the destination's faults first. */
  private void push(long[] need) throws Exception {
    long remaining = count(need);
    int cursor = 0;
    while (remaining > 0) {
      Integer d = demands.poll();
      if (d != null) {
        if (test(need, d)) {
          clear(need, d);
          remaining--;
          sendPage(d, Frames.KIND_DEMAND);
        }
        continue;
      }
      while (!test(need, cursor)) {
        cursor++;
      }
      clear(need, cursor);
      remaining--;
      sendPage(cursor, Frames.KIND_PUSH);
    }
  }

  private long sendPages(long[] bitmap, byte kind) throws Exception {
    long bytes = 0;
    for (int w = 0; w < bitmap.length; w++) {
      long bits = bitmap[w];
      while (bits != 0) {
        int p = (w << 6) + Long.numberOfTrailingZeros(bits);
        bits &= bits - 1;
        sendPage(p, kind);
        bytes += PageContent.PAGE;
      }
    }
    return bytes;
  }

  private void sendPage(int page, byte kind) throws Exception {
    bucket.acquire(PAGE_FRAME);
    ByteBuf b = channel.alloc().directBuffer(PAGE_FRAME);
    try {
      b.writeInt(PAGE_FRAME - 4).writeByte(Frames.PAGE).writeByte(kind).writeInt(page);
      guest.copyPage(page, b, b.writerIndex());
      b.writerIndex(PAGE_FRAME);
    } catch (VmdException | RuntimeException e) {
      b.release();
      throw e;
    }
    switch (kind) {
      case Frames.KIND_LIVE, Frames.KIND_STOP_COPY -> fullPageBytes += PAGE_FRAME;
      case Frames.KIND_PUSH -> pushedBytes += PAGE_FRAME;
      default -> {
        demandBytes += PAGE_FRAME;
        demandCount++;
      }
    }
    write(b);
  }

  private void sendStop(long[] changed, long[] slots, int n, int[] swappedPages, long[] swappedSlots)
      throws Exception {
    int size = 12 + 8 * (changed.length + slots.length) + 12 * n;
    offsetBytes += 12L * n;
    send(Frames.STOP, size, b -> {
      b.writeInt(changed.length);
      for (long w : changed) {
        b.writeLong(w);
      }
      b.writeInt(slots.length);
      for (long w : slots) {
        b.writeLong(w);
      }
      b.writeInt(n);
      for (int i = 0; i < n; i++) {
        b.writeInt(swappedPages[i]).writeLong(swappedSlots[i]);
      }
    }, true);
  }

  private void send(byte type, int size, Consumer<ByteBuf> body, boolean paced) throws Exception {
    if (paced) {
      bucket.acquire(size + 5L);
    }
    ByteBuf b = channel.alloc().buffer(size + 5);
    b.writeInt(size + 1).writeByte(type);
    if (body != null) {
      body.accept(b);
    }
    write(b);
  }

  /** Writes and, when the socket is backed up, waits for it: the sender never queues without bound. */
  private void write(ByteBuf b) throws Exception {
    if (!channel.isActive()) {
      b.release();
      throw new VmdException(ErrorCode.UNAVAILABLE, "migration stream to the destination closed");
    }
    channel.writeAndFlush(b, channel.voidPromise());
    while (!channel.isWritable() && channel.isActive()) {
      Thread.sleep(1);
    }
    if (complete.isCompletedExceptionally()) {
      await(complete, "the destination");
    }
  }

  private void await(CompletableFuture<Void> f, String what) throws Exception {
    try {
      f.get(options.faultTimeout().toMillis() * 4, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw new VmdException(ErrorCode.UNAVAILABLE, "migration failed waiting for " + what + ": "
          + e.getCause().getMessage());
    } catch (TimeoutException e) {
      throw new VmdException(ErrorCode.UNAVAILABLE, "migration timed out waiting for " + what);
    }
  }

  private final class Replies extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf f = (ByteBuf) msg;
      try {
        byte type = f.readByte();
        switch (type) {
          case Frames.READY -> ready.complete(null);
          case Frames.RESUMED -> resumed.complete(null);
          case Frames.DEMAND -> demands.add(f.readInt());
          case Frames.COMPLETE -> complete.complete(null);
          case Frames.ABORT -> {
            VmdException e = new VmdException(ErrorCode.INTERNAL, "destination aborted: "
                + MigrationDestination.string(f));
            ready.completeExceptionally(e);
            resumed.completeExceptionally(e);
            complete.completeExceptionally(e);
          }
          default -> LOG.warn("unexpected frame type {} from the destination", type);
        }
      } finally {
        f.release();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      VmdException e = new VmdException(ErrorCode.UNAVAILABLE, "the destination closed the migration stream");
      ready.completeExceptionally(e);
      resumed.completeExceptionally(e);
      complete.completeExceptionally(e);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      LOG.warn("migration stream: {}", cause.toString());
      ctx.close();
    }
  }

  static long count(long[] bitmap) {
    long n = 0;
    for (long w : bitmap) {
      n += Long.bitCount(w);
    }
    return n;
  }

  private static void setAll(long[] bitmap, int pages) {
    for (int p = 0; p < pages; p++) {
      bitmap[p >>> 6] |= 1L << p;
    }
  }

  private static void or(long[] into, long[] from) {
    for (int i = 0; i < into.length; i++) {
      into[i] |= from[i];
    }
  }

  private static boolean test(long[] bitmap, int p) {
    return (bitmap[p >>> 6] & (1L << p)) != 0;
  }

  private static void clear(long[] bitmap, int p) {
    bitmap[p >>> 6] &= ~(1L << p);
  }
}
