package io.vmd.migration.engine;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.HostPort;
import io.vmd.common.Transports;
import io.vmd.migration.guest.EmulatedGuest;
import io.vmd.migration.model.Policy;
import io.vmd.migration.swap.SwapPageSource;
import io.vmd.protocol.ErrorCode;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The receiving migration manager: accepts one incoming VM per connection, rebuilds its memory as a
 * destination {@link EmulatedGuest}, and at the stop frame takes the VM's swap namespace over for
 * writing (its epoch moves on, so the source can no longer write it), resumes the VM through the
 * {@link ResumeHook} and serves its faults: a page still at the source is demanded from it; a page in
 * the VMD is read by its swap offset, with read-ahead.
 */
public final class MigrationDestination implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationDestination.class);

  /** Starts the migrated VM's program on its new memory. */
  @FunctionalInterface
  public interface ResumeHook {
    void resume(EmulatedGuest guest) throws Exception;
  }

  private final VmdClient client;
  private final ResumeHook hook;
  private final int readAhead;
  private final Duration faultTimeout;
  private final EventLoopGroup group;
  private final ExecutorService admin;
  private final Channel listener;
  private final CompletableFuture<EmulatedGuest> arrived = new CompletableFuture<>();
  private final AtomicLong faultsFromSource = new AtomicLong();
  private final Histogram sourceFaultNanos = new ConcurrentHistogram(3_600_000_000_000L, 2);
  private volatile long resumedNanos;
  private volatile long vmdFaultsAtResume;

  private MigrationDestination(HostPort at, VmdClient client, int readAhead, Duration faultTimeout, ResumeHook hook)
      throws InterruptedException {
    this.client = client;
    this.hook = hook;
    this.readAhead = readAhead;
    this.faultTimeout = faultTimeout;
    this.group = Transports.group(1, "vmd-migration-in");
    this.admin = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "vmd-migration-resume");
      t.setDaemon(true);
      return t;
    });
    ServerBootstrap b = new ServerBootstrap().group(group).channel(Transports.serverChannel())
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.ALLOCATOR, Transports.allocator())
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline().addLast(new LengthFieldBasedFrameDecoder(Frames.MAX_FRAME, 0, 4, 0, 4))
                .addLast(new Session());
          }
        });
    this.listener = b.bind(new InetSocketAddress(at.host(), at.port())).sync().channel();
  }

  public static MigrationDestination listen(HostPort at, VmdClient client, int readAheadPages, Duration faultTimeout,
      ResumeHook hook) throws InterruptedException {
    return new MigrationDestination(at, client, readAheadPages, faultTimeout, hook);
  }

  public HostPort address() {
    InetSocketAddress a = (InetSocketAddress) listener.localAddress();
    return new HostPort(a.getHostString(), a.getPort());
  }

  /** Completes with the guest once nothing of it is left at the source. */
  public CompletableFuture<EmulatedGuest> arrived() {
    return arrived;
  }

  public long faultsFromSource() {
    return faultsFromSource.get();
  }

  public Histogram sourceFaultLatency() {
    return sourceFaultNanos.copy();
  }

  /** Swap-ins of the migrated guest since it resumed here: faults served by the VMD. */
  public long faultsFromVmd(EmulatedGuest g) {
    return g.swapIns() - vmdFaultsAtResume;
  }

  public long resumedNanos() {
    return resumedNanos;
  }

  private final class Session extends ChannelInboundHandlerAdapter implements EmulatedGuest.FaultHandler {
    private Channel channel;
    private EmulatedGuest guest;
    private String swapName;
    private Policy policy;
    private volatile boolean resumed;
    private volatile boolean running;
    private boolean done;
    private final ConcurrentHashMap<Integer, CompletableFuture<Void>> waiting = new ConcurrentHashMap<>();

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      channel = ctx.channel();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf f = (ByteBuf) msg;
      try {
        byte type = f.readByte();
        switch (type) {
          case Frames.HELLO -> hello(f);
          case Frames.PAGE -> page(f);
          case Frames.SWAPPED -> swapped(f);
          case Frames.STOP -> stop(f);
          case Frames.DONE -> {
            done = true;
            maybeComplete();
          }
          case Frames.ABORT -> fail(new VmdException(ErrorCode.INTERNAL, "source aborted: " + string(f)));
          default -> throw new IllegalStateException("unexpected frame type " + type);
        }
      } catch (RuntimeException e) {
        LOG.error("migration stream failed", e);
        fail(e);
        ctx.close();
      } finally {
        f.release();
      }
    }

    private void hello(ByteBuf f) {
      int pages = f.readInt();
      int residentLimit = f.readInt();
      policy = Policy.values()[f.readByte()];
      swapName = string(f);
      long start = System.nanoTime();
      guest = EmulatedGuest.destination(pages, residentLimit, this);
      LOG.info("incoming VM: {} pages, reservation {} pages, swap namespace '{}' (memory set up in {} ms)", pages,
          residentLimit, swapName, (System.nanoTime() - start) / 1_000_000);
      send(Frames.READY, null);
    }

    private void page(ByteBuf f) {
      byte kind = f.readByte();
      int page = f.readInt();
      if (!resumed) {
        guest.overwrite(page, f, f.readerIndex());
      } else if (guest.install(page, f, f.readerIndex())) {
        CompletableFuture<Void> w = waiting.remove(page);
        if (w != null) {
          w.complete(null);
        }
        maybeComplete();
      }
    }

    private void swapped(ByteBuf f) {
      int n = f.readInt();
      for (int i = 0; i < n; i++) {
        guest.swappedAt(f.readInt(), f.readLong());
      }
    }

    private void stop(ByteBuf f) {
      long[] dirty = longs(f);
      long[] sourceSlots = longs(f);
      int swappedNow = f.readInt();
      for (int w = 0; w < dirty.length; w++) {
        long bits = dirty[w];
        while (bits != 0) {
          int page = (w << 6) + Long.numberOfTrailingZeros(bits);
          bits &= bits - 1;
          guest.forget(page);
        }
      }
      for (int i = 0; i < swappedNow; i++) {
        guest.swappedAt(f.readInt(), f.readLong());
      }
      guest.reserveSlots(sourceSlots);
      resumed = true;
      // Attaching is a blocking cluster round trip: not on this event loop.
      admin.execute(() -> {
        try {
          // Agile hands the VM's swap namespace over (and fences the source); the other policies
          // brought every page here, and the VM swaps to a namespace of this host's.
          String mine = swapName;
          if (policy != Policy.AGILE) {
            mine = swapName + "-in";
            client.namespaces().create(mine, (long) guest.pages() * 4096, 1);
          }
          Namespace ns = client.attach(mine, true);
          guest.attachSwap(ns, SwapPageSource.over(ns, readAhead));
          vmdFaultsAtResume = guest.swapIns();
          guest.resetSwapInLatency();
          resumedNanos = System.nanoTime();
          hook.resume(guest);
          running = true;
          send(Frames.RESUMED, null);
          channel.eventLoop().execute(this::maybeComplete);
        } catch (Exception e) {
          LOG.error("cannot resume the incoming VM", e);
          fail(e);
          channel.close();
        }
      });
    }

    private void maybeComplete() {
      if (done && running && guest.absentPages() == 0 && !arrived.isDone()) {
        guest.settleSlots();
        send(Frames.COMPLETE, null);
        arrived.complete(guest);
      }
    }

    @Override
    public void fetch(int page) throws VmdException {
      CompletableFuture<Void> mine = new CompletableFuture<>();
      CompletableFuture<Void> prior = waiting.putIfAbsent(page, mine);
      CompletableFuture<Void> w = prior != null ? prior : mine;
      if (guest.absentPages() == 0 || !guest.isAbsent(page)) {
        waiting.remove(page, w);
        return;
      }
      long start = System.nanoTime();
      if (prior == null) {
        faultsFromSource.incrementAndGet();
        send(Frames.DEMAND, b -> b.writeInt(page));
      }
      try {
        w.get(faultTimeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new VmdException(ErrorCode.UNAVAILABLE, "interrupted waiting for page " + page);
      } catch (TimeoutException e) {
        throw new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " did not come from the source within "
            + faultTimeout.toMillis() + " ms");
      } catch (ExecutionException e) {
        throw new VmdException(ErrorCode.UNAVAILABLE, "page " + page + " cannot come: " + e.getCause().getMessage());
      }
      if (prior == null) {
        sourceFaultNanos.recordValue(System.nanoTime() - start);
      }
    }

    private void send(byte type, Consumer<ByteBuf> body) {
      ByteBuf b = channel.alloc().buffer(64);
      b.writeInt(0).writeByte(type);
      if (body != null) {
        body.accept(b);
      }
      b.setInt(0, b.readableBytes() - 4);
      channel.writeAndFlush(b);
    }

    private void fail(Throwable e) {
      arrived.completeExceptionally(e);
      for (CompletableFuture<Void> w : waiting.values()) {
        w.completeExceptionally(e);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (!arrived.isDone()) {
        fail(new VmdException(ErrorCode.UNAVAILABLE, "migration stream closed before the VM arrived"));
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      LOG.warn("migration stream: {}", cause.toString());
      fail(cause);
      ctx.close();
    }
  }

  static long[] longs(ByteBuf f) {
    long[] a = new long[f.readInt()];
    for (int i = 0; i < a.length; i++) {
      a[i] = f.readLong();
    }
    return a;
  }

  static String string(ByteBuf f) {
    int n = f.readInt();
    String s = f.toString(f.readerIndex(), n, StandardCharsets.UTF_8);
    f.skipBytes(n);
    return s;
  }

  @Override
  public void close() {
    listener.close().syncUninterruptibly();
    admin.shutdownNow();
    Transports.shutdown(group, 1, "migration destination");
  }
}
