package io.vmd.client;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.util.collection.LongObjectHashMap;
import io.netty.util.concurrent.ScheduledFuture;
import io.vmd.common.ClusterKey;
import io.vmd.common.FlushBatch;
import io.vmd.common.Slices;
import io.vmd.common.Transports;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.FrameDecoder;
import io.vmd.protocol.Hello;
import io.vmd.protocol.Op;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One pipelined connection to one server. Requests carry ids; replies may come in any order and are
 * matched through a primitive long-keyed map. A broken connection fails every pending request at
 * once; a sweeper fails requests whose reply is later than the configured timeout, so no caller
 * waits forever on a silent server. A server that does not take its requests (its socket full) gets
 * them queued here, up to {@link ClientConfig#maxQueuedBytes()}; past that they fail at once rather
 * than grow Netty's outbound buffer without bound. Sends and that queue run on the connection's loop. *
 * <p>Why one file of about 540 lines: connecting, HELLO, the pending table, the timeout sweeper and the
 * backlog all guard one channel's state on its event loop; split, each part would reach into the others'.
 */
final class ServerConnection {
  private static final Logger LOG = LoggerFactory.getLogger(ServerConnection.class);

  private final ServerState state;
  private final ClientConfig config;
  private final AtomicLong ids = new AtomicLong();
  private final long timeoutNanos;
  private final LongObjectHashMap<Pending> pending = new LongObjectHashMap<>();
  private volatile Channel channel;
  private volatile Hello hello;
  private ScheduledFuture<?> sweeper;
  /** When anything last came from the server: its reports arrive every second while it lives. */
  private volatile long lastHeardNanos = System.nanoTime();
  private volatile boolean closed;
  private EventLoop loop;
  private long reconnectDelayMillis = 250;
  private final AtomicBoolean reconnecting = new AtomicBoolean();
  /** The server refused this client for good (wrong cluster, version or key): not tried again. */
  private volatile boolean refused;
  /** A frame waiting for the socket to take more, with the id of its request. */
  private record Queued(long id, ByteBuf frame) {}

  /** Frames waiting for the socket to take more, in order; loop-confined. */
  private final ArrayDeque<Queued> backlog = new ArrayDeque<>();
  /** Written on the loop, read by metrics. */
  private volatile long backlogBytes;

  ServerConnection(ServerState state, ClientConfig config) {
    this.state = state;
    this.config = config;
    this.timeoutNanos = config.requestTimeout().toNanos();
  }

  ServerState state() {
    return state;
  }

  boolean active() {
    Channel ch = channel;
    return ch != null && ch.isActive();
  }

  Hello hello() {
    return hello;
  }

  /** Connects and says HELLO; completes when the server answered (or fails with why not). */
  CompletableFuture<Void> connect(EventLoop on) {
    loop = on;
    CompletableFuture<Void> ready = new CompletableFuture<>();
    ready.whenComplete((v, e) -> {
      reconnecting.set(false);
      if (e == null) {
        reconnectDelayMillis = 250;
      } else if (e instanceof VmdException v2 && (v2.code() == ErrorCode.WRONG_CLUSTER
          || v2.code() == ErrorCode.VERSION || v2.code() == ErrorCode.UNAUTHORIZED)) {
        refused = true;
        closeChannel();
      } else {
        // Refused for now (say, a server still starting), or lost: close and try again later.
        closeChannel();
        scheduleReconnect();
      }
    });
    Bootstrap b = new Bootstrap()
        .group(on)
        .channel(Transports.clientChannel())
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.ALLOCATOR, Transports.allocator())
        .option(ChannelOption.RCVBUF_ALLOCATOR, Transports.receiveSizes())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.connectTimeout().toMillis())
        // Writable again under half of the high mark: then the queued frames go out.
        .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(2 << 20, 4 << 20))
        .handler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            if (config.tls() != null) {
              ch.pipeline().addLast(config.tls().clientHandler(ch.alloc(), state.address()));
            }
            ch.pipeline().addLast(new FrameDecoder().forwarding()).addLast(new Handler());
          }
        });
    ChannelFuture cf = b.connect(state.address().toSocketAddress());
    cf.addListener(f -> {
      if (!f.isSuccess()) {
        ready.completeExceptionally(new VmdException(ErrorCode.UNAVAILABLE,
            "cannot connect to server " + state.address() + ": " + f.cause().getMessage()));
        return;
      }
      channel = cf.channel();
      lastHeardNanos = System.nanoTime();
      long every = Math.max(50, Math.min(config.requestTimeout().toMillis() / 4, config.downAfter().toMillis() / 3));
      sweeper = channel.eventLoop().scheduleAtFixedRate(this::sweep, every, every, TimeUnit.MILLISECONDS);
      sendHello(ready);
    });
    return ready;
  }

  private void sendHello(CompletableFuture<Void> ready) {
    long id = nextId();
    ClusterKey key = config.clusterKey();
    byte[] clientNonce = key == null ? null : ClusterKey.nonce();
    ByteBuf frame = Codec.frame(channel.alloc(), Op.HELLO, 0, 0, id, 0, 0, 0, 0, b -> {
      Codec.writeString(b, config.cluster());
      if (clientNonce != null) {
        b.writeBytes(clientNonce);
      }
    });
    send(id, frame, new Pending() {
      @Override
      void onReply(ByteBuf f) {
        if (Frame.status(f) != 0) {
          ready.completeExceptionally(new VmdException(ErrorCode.of(Frame.status(f)),
              "server " + state.address() + " refused HELLO: " + Codec.errorMessage(f)));
          return;
        }
        ByteBuf in = Frame.skipHeader(f.duplicate());
        Hello h = Codec.readHello(in);
        if (key == null) {
          ready(h, ready);
          return;
        }
        // Keyed: the server proves it holds the key before this client proves it does.
        if (in.readableBytes() < ClusterKey.NONCE_BYTES + ClusterKey.PROOF_BYTES) {
          ready.completeExceptionally(new VmdException(ErrorCode.UNAUTHORIZED, "server " + state.address()
              + " does not use a cluster key; this client does: refusing it"));
          channel.close();
          return;
        }
        byte[] serverNonce = new byte[ClusterKey.NONCE_BYTES];
        byte[] serverProof = new byte[ClusterKey.PROOF_BYTES];
        in.readBytes(serverNonce).readBytes(serverProof);
        if (!ClusterKey.same(serverProof, key.proof("vmd-server", clientNonce, serverNonce))) {
          ready.completeExceptionally(new VmdException(ErrorCode.UNAUTHORIZED, "server " + state.address()
              + " could not prove it holds the cluster key: refusing it"));
          channel.close();
          return;
        }
        byte[] proof = key.proof("vmd-client", serverNonce, clientNonce);
        long authId = nextId();
        send(authId, Codec.frame(channel.alloc(), Op.AUTH, 0, 0, authId, 0, 0, 0, 0, b -> b.writeBytes(proof)),
            new Pending() {
              @Override
              void onReply(ByteBuf a) {
                if (Frame.status(a) != 0) {
                  ready.completeExceptionally(new VmdException(ErrorCode.of(Frame.status(a)),
                      "server " + state.address() + " refused the cluster key: " + Codec.errorMessage(a)));
                } else {
                  ready(h, ready);
                }
              }

              @Override
              void onFailure(VmdException e) {
                ready.completeExceptionally(e);
              }
            });
      }

      @Override
      void onFailure(VmdException e) {
        ready.completeExceptionally(e);
      }
    });
  }

  private void ready(Hello h, CompletableFuture<Void> ready) {
    if (!h.serverId().equals(state.id())) {
      // Another server took this address (the one we know restarted without its pages, or moved):
      // it is not the member whose pages the location tables place here.
      ready.completeExceptionally(new VmdException(ErrorCode.UNAVAILABLE, "server " + state.address()
          + " is now " + (h.serverId().isEmpty() ? "a standalone server" : "server " + h.serverId())
          + ", not " + state.id()));
      channel.close();
      return;
    }
    hello = h;
    state.report(h.availability());
    state.up(true);
    ready.complete(null);
  }

  private void closeChannel() {
    Channel ch = channel;
    if (ch != null) {
      ch.close();
    }
  }

  long nextId() {
    return ids.incrementAndGet();
  }

  /**
   * Registers {@code p} under {@code id} and sends the frame (which this method owns from now on).
   * Fails {@code p} at once when the connection is down or its queue is full.
   */
  void send(long id, ByteBuf frame, Pending p) {
    Channel ch = channel;
    if (ch == null || !ch.isActive()) {
      frame.release();
      p.onFailure(down());
      return;
    }
    if (!ch.eventLoop().inEventLoop()) {
      try {
        ch.eventLoop().execute(() -> send(id, frame, p));
      } catch (RejectedExecutionException e) {
        frame.release();
        p.onFailure(down());
      }
      return;
    }
    if (!register(ch, id, p)) {
      frame.release();
      p.onFailure(down());
      return;
    }
    if (backlog.isEmpty() && ch.isWritable()) {
      // A failed write closes the connection (exceptionCaught), which fails every pending request.
      FlushBatch.writeAndFlush(ch, frame);
    } else {
      queue(ch, id, frame);
    }
  }

  private VmdException down() {
    return new VmdException(ErrorCode.UNAVAILABLE, "server " + state.address() + " is down");
  }

  /**
   * Registers {@code p} unless the channel is no longer the live one: checked under the same lock the
   * close takes to fail every pending request, so a request registered as the connection closes is
   * failed by that close or refused here, never left waiting.
   */
  private boolean register(Channel ch, long id, Pending p) {
    p.deadlineNanos = System.nanoTime() + timeoutNanos;
    synchronized (pending) {
      if (ch != channel || !ch.isActive()) {
        return false;
      }
      pending.put(id, p);
    }
    return true;
  }

  /** Holds a frame until the server takes more; past the bound the request fails at once. */
  private void queue(Channel ch, long id, ByteBuf frame) {
    int bytes = frame.readableBytes();
    if (backlogBytes + bytes > config.maxQueuedBytes()) {
      frame.release();
      fail(id, new VmdException(ErrorCode.UNAVAILABLE, "server " + state.address() + " is not taking requests ("
          + (backlogBytes >> 20) + " MiB queued for it)"));
      return;
    }
    backlog.add(new Queued(id, frame));
    backlogBytes += bytes;
  }

  /** Sends queued frames while the socket takes them; frames of requests already failed are dropped. */
  private void drainBacklog(Channel ch) {
    boolean wrote = false;
    while (!backlog.isEmpty() && (ch.isWritable() || !ch.isActive())) {
      Queued q = backlog.poll();
      long id = q.id();
      ByteBuf frame = q.frame();
      backlogBytes -= frame.readableBytes();
      boolean live;
      synchronized (pending) {
        live = pending.containsKey(id);
      }
      if (live && ch.isActive()) {
        ch.write(frame, ch.voidPromise());
        wrote = true;
      } else {
        frame.release();
      }
    }
    if (wrote) {
      ch.flush();
    }
  }

  /** Bytes queued for a server that does not take them now. */
  long queuedBytes() {
    return backlogBytes;
  }

  /** Sends a header and a payload slice as one frame, so concurrent senders never interleave. */
  void send(long id, ByteBuf header, ByteBuf payload, Pending p) {
    Channel ch = channel;
    if (ch == null) {
      header.release();
      payload.release();
      p.onFailure(down());
      return;
    }
    if (ch.eventLoop().inEventLoop() && ch.isActive() && backlog.isEmpty() && ch.isWritable()) {
      // On the loop nothing can come between the two writes: no composite buffer needed.
      if (!register(ch, id, p)) {
        header.release();
        payload.release();
        p.onFailure(down());
        return;
      }
      ch.write(header, ch.voidPromise());
      // A payload gathered from several reads goes out as its parts (Slices).
      FlushBatch.writeAndFlush(ch, Slices.writeAllButLastPart(ch, payload));
      return;
    }
    CompositeByteBuf frame = ch.alloc().compositeDirectBuffer(2);
    frame.addComponents(true, header, payload);
    send(id, frame, p);
  }

  ByteBuf header(int capacity) {
    Channel ch = channel;
    return (ch == null ? ByteBufAllocator.DEFAULT : ch.alloc()).directBuffer(capacity);
  }

  private void fail(long id, VmdException e) {
    Pending p;
    synchronized (pending) {
      p = pending.remove(id);
    }
    if (p != null) {
      p.onFailure(e);
    }
  }

  /**
   * A lost server is tried again in the background, every 250 ms at first and then less often, up to
   * every 5 s: a restarted server rejoins without anyone asking.
   */
  private void scheduleReconnect() {
    if (closed || refused || loop == null || loop.isShuttingDown() || !reconnecting.compareAndSet(false, true)) {
      return;
    }
    long delay = reconnectDelayMillis;
    reconnectDelayMillis = Math.min(5000, reconnectDelayMillis * 2);
    try {
      loop.schedule(() -> {
        if (closed || active()) {
          reconnecting.set(false);
          return;
        }
        connect(loop).whenComplete((v, e) -> {
          if (e == null) {
            LOG.info("server {} is back", state.address());
          }
        });
      }, delay, TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException e) {
      // the client is shutting down
    }
  }

  private void sweep() {
    long now = System.nanoTime();
    Channel ch = channel;
    if (ch != null && ch.isActive() && now - lastHeardNanos > config.downAfter().toNanos()) {
      LOG.warn("server {} sent nothing for {} ms; taking it as down", state.address(),
          (now - lastHeardNanos) / 1_000_000);
      ch.close();
      return;
    }
    List<Long> late = null;
    synchronized (pending) {
      for (LongObjectHashMap.PrimitiveEntry<Pending> e : pending.entries()) {
        if (now - e.value().deadlineNanos > 0) {
          if (late == null) {
            late = new ArrayList<>();
          }
          late.add(e.key());
        }
      }
    }
    if (late != null) {
      for (long id : late) {
        fail(id, new VmdException(ErrorCode.UNAVAILABLE, "server " + state.address()
            + " did not answer within " + config.requestTimeout().toMillis() + " ms"));
      }
    }
  }

  private void failAll(String why) {
    failAll(new VmdException(ErrorCode.UNAVAILABLE, why));
  }

  private void failAll(VmdException why) {
    List<Pending> all;
    synchronized (pending) {
      all = new ArrayList<>(pending.values());
      pending.clear();
    }
    for (Pending p : all) {
      p.onFailure(why);
    }
  }

  void close() {
    closed = true;
    Channel ch = channel;
    if (ch != null) {
      ch.close().syncUninterruptibly();
    }
  }

  /** Hands a reply to its request; if handling it throws, the request fails rather than waits forever. */
  private void deliver(Pending p, ByteBuf f) {
    int generation = p.generation;
    try {
      p.onReply(f);
    } catch (RuntimeException e) {
      LOG.error("failed to handle a {} reply from {}", Op.name(Frame.op(f)), state.address(), e);
      if (p.generation == generation) {
        p.onFailure(new VmdException(ErrorCode.INTERNAL, "client failed to handle the reply from "
            + state.address() + ": " + e, e));
      }
      // Otherwise the request had completed and gone back to its pool before what threw (its
      // caller's callback): the object may already serve another request, which is not ours to fail.
    }
  }

  private final class Handler extends ChannelInboundHandlerAdapter {
    /** Whether this read burst opened the loop's flush batch (closed in channelReadComplete). */
    private boolean batching;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf f = (ByteBuf) msg;
      lastHeardNanos = System.nanoTime();
      if (!batching) {
        // Replies complete requests whose callbacks send more requests and NBD replies: one flush each.
        batching = true;
        FlushBatch.current().open();
      }
      try {
        String bad = Frame.checkReply(f);
        if (bad != null) {
          LOG.warn("server {} sent a malformed frame ({}); closing", state.address(), bad);
          ctx.close();
          return;
        }
        if (!Frame.isReply(f)) {
          state.report(Codec.readAvailability(Frame.skipHeader(f.duplicate())));
          return;
        }
        long id = Frame.requestId(f);
        if (id == 0) {
          LOG.warn("server {}: {}", state.address(), Codec.errorMessage(f));
          return;
        }
        Pending p;
        synchronized (pending) {
          p = pending.get(id);
          if (p != null && (Frame.status(f) != 0 || p.done(f))) {
            pending.remove(id);
          } else if (p != null) {
            // One frame of a reply in several (LIST): the server is making progress, the deadline moves.
            p.deadlineNanos = System.nanoTime() + timeoutNanos;
          }
        }
        if (p != null) {
          deliver(p, f);
        }
      } catch (RuntimeException e) {
        LOG.error("failed to handle a frame from {}", state.address(), e);
      } finally {
        f.release();
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      endBatch();
      ctx.fireChannelReadComplete();
    }

    private void endBatch() {
      if (batching) {
        batching = false;
        FlushBatch.current().close();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      drainBacklog(ctx.channel());
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      endBatch();
      state.up(false);
      if (sweeper != null) {
        sweeper.cancel(false);
      }
      failAll("connection to server " + state.address() + " closed");
      drainBacklog(ctx.channel());
      scheduleReconnect();
    }

    /**
     * With TLS, the server must prove it is a node of the cluster's CA at the address dialled (its
     * certificate's role is server); else this client refuses it, for good (UNAUTHORIZED).
     */
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof SslHandshakeCompletionEvent done) {
        String refusal = null;
        if (!done.isSuccess()) {
          Throwable cause = done.cause();
          if (!(cause instanceof SSLException) || cause instanceof SslHandshakeTimeoutException) {
            // Closed or silent before the handshake ended (a frozen, dying or overloaded server): a
            // connection that failed, retried like any other; not a refusal, which would be for good.
            LOG.debug("TLS with server {} did not complete: {}", state.address(), cause.toString());
            ctx.close();
            return;
          }
          refusal = "TLS with server " + state.address() + " failed: "
              + (cause.getMessage() != null ? cause.getMessage() : cause.toString());
        } else {
          try {
            Identity server = ClusterTls.peer(ctx.pipeline().get(SslHandler.class));
            if (server.role() != Role.SERVER) {
              refusal = "server " + state.address() + " presented the certificate of " + server + ", not a server's";
            }
          } catch (SSLPeerUnverifiedException | IllegalArgumentException e) {
            refusal = "server " + state.address() + ": " + e.getMessage();
          }
        }
        if (refusal != null) {
          LOG.warn("{}", refusal);
          failAll(new VmdException(ErrorCode.UNAUTHORIZED, refusal));
          ctx.close();
          return;
        }
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
      LOG.warn("connection to server {} failed: {}", state.address(), c.toString());
      ctx.close();
    }
  }
}
