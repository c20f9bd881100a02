package io.vmd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.vmd.common.ClusterKey;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.FrameDecoder;
import io.vmd.protocol.Hello;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.ProtocolException;
import io.vmd.server.store.PageStore;
import io.vmd.server.store.PinnedPages;
import java.io.IOException;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one client connection. Requests are handled in arrival order on the connection's event loop
 * and replies are flushed once per read batch, so a pipelining client gets many replies per syscall.
 * A malformed frame gets a BAD_REQUEST reply and closes this connection only; a request that is well
 * formed but wrong (unknown namespace, out-of-range pages, stale epoch, no space) gets an error reply
 * and the connection carries on.
 */
final class ServerHandler extends ChannelInboundHandlerAdapter {
  private static final Logger LOG = LoggerFactory.getLogger(ServerHandler.class);

  private final VmdServer server;
  private final PageStore store;
  private final NamespaceTable namespaces;
  private final ServerMetrics metrics;
  private boolean helloDone;
  /** Whether the server speaks TLS: then no frame is served before the peer's certificate is verified. */
  private final boolean tls;
  /** With TLS: the client, as its certificate names it, once the handshake is done. */
  private Identity peer;
  /** A keyed HELLO was answered: only AUTH may come now, carrying this proof. */
  private byte[] expectedProof;

  ServerHandler(VmdServer server) {
    this.server = server;
    this.store = server.store();
    this.namespaces = server.namespaces();
    this.metrics = server.metrics();
    this.tls = server.config().tls() != null;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf frame = (ByteBuf) msg;
    long start = System.nanoTime();
    byte op = Frame.op(frame);
    try {
      if (Frame.version(frame) != Frame.VERSION) {
        fatal(ctx, frame, ErrorCode.VERSION, "server speaks protocol version " + Frame.VERSION
            + ", the client sent version " + Frame.version(frame));
        return;
      }
      String malformed = Frame.checkRequest(frame);
      if (malformed != null) {
        fatal(ctx, frame, ErrorCode.BAD_REQUEST, "malformed frame: " + malformed);
        return;
      }
      if (tls && peer == null) {
        fatal(ctx, frame, ErrorCode.UNAUTHORIZED, "no verified client certificate");
        return;
      }
      if (op == Op.AUTH) {
        auth(ctx, frame);
        metrics.request(op, start);
        return;
      }
      if (!helloDone && op != Op.HELLO) {
        fatal(ctx, frame, expectedProof != null ? ErrorCode.UNAUTHORIZED : ErrorCode.BAD_REQUEST,
            expectedProof != null ? "send AUTH before " + Op.name(op) : "send HELLO before " + Op.name(op));
        return;
      }
      serve(ctx, frame, op);
      metrics.request(op, start);
    } catch (IllegalArgumentException e) {
      fatal(ctx, frame, ErrorCode.BAD_REQUEST, "malformed " + Op.name(op) + " payload: " + e.getMessage());
    } catch (RuntimeException e) {
      LOG.error("failed to serve {} from {}", Op.name(op), ctx.channel().remoteAddress(), e);
      reply(ctx, Codec.error(ctx.alloc(), op, Frame.requestId(frame), Frame.namespace(frame),
          ErrorCode.INTERNAL, "server error: " + e));
      metrics.error(ErrorCode.INTERNAL);
    } finally {
      frame.release();
    }
  }

  private void serve(ChannelHandlerContext ctx, ByteBuf f, byte op) {
    switch (op) {
      case Op.HELLO: hello(ctx, f); break;
      case Op.PUT: put(ctx, f); break;
      case Op.GET: get(ctx, f); break;
      case Op.DELETE: delete(ctx, f); break;
      case Op.LIST: list(ctx, f); break;
      case Op.NS_CREATE: createNamespace(ctx, f); break;
      case Op.NS_DELETE: deleteNamespace(ctx, f); break;
      case Op.NS_LIST: listNamespaces(ctx, f); break;
      case Op.NS_INFO: namespaceInfo(ctx, f); break;
      case Op.NS_ATTACH: attach(ctx, f); break;
      case Op.AUTH:
        throw new IllegalStateException("AUTH is handled before dispatch");
      case Op.AVAILABILITY:
        reply(ctx, Codec.frame(ctx.alloc(), Op.AVAILABILITY, Frame.FLAG_REPLY, 0, Frame.requestId(f),
            0, 0, 0, 0, b -> Codec.writeAvailability(b, server.availability())));
        break;
      default:
        throw new IllegalStateException("unreachable op " + op);
    }
  }

  private void hello(ChannelHandlerContext ctx, ByteBuf f) {
    ByteBuf in = Frame.skipHeader(f.duplicate());
    String cluster = Codec.readString(in);
    if (!cluster.equals(server.config().cluster())) {
      fatal(ctx, f, ErrorCode.WRONG_CLUSTER, "this server belongs to cluster '" + server.config().cluster()
          + "', not '" + cluster + "'");
      return;
    }
    Hello hello = new Hello(server.config().cluster(), server.instanceId(), server.serverId(), Frame.MAX_FRAME,
        server.availability());
    ClusterKey key = server.config().clusterKey();
    if (key == null) {
      authenticated(ctx);
      reply(ctx, Codec.frame(ctx.alloc(), Op.HELLO, Frame.FLAG_REPLY, 0, Frame.requestId(f), 0, 0, 0, 0,
          b -> Codec.writeHello(b, hello)));
      server.clients().add(ctx.channel());
      return;
    }
    if (in.readableBytes() < ClusterKey.NONCE_BYTES) {
      server.metrics().connectionRefused("cluster_key");
      fatal(ctx, f, ErrorCode.UNAUTHORIZED, "cluster '" + cluster + "' is keyed: connect with its cluster key");
      return;
    }
    byte[] clientNonce = new byte[ClusterKey.NONCE_BYTES];
    in.readBytes(clientNonce);
    byte[] serverNonce = ClusterKey.nonce();
    byte[] serverProof = key.proof("vmd-server", clientNonce, serverNonce);
    expectedProof = key.proof("vmd-client", serverNonce, clientNonce);
    reply(ctx, Codec.frame(ctx.alloc(), Op.HELLO, Frame.FLAG_REPLY, 0, Frame.requestId(f), 0, 0, 0, 0,
        b -> {
          Codec.writeHello(b, hello);
          b.writeBytes(serverNonce).writeBytes(serverProof);
        }));
  }

  /** HELLO (and, keyed, AUTH) is done: full-size frames from now on. */
  private void authenticated(ChannelHandlerContext ctx) {
    helloDone = true;
    FrameDecoder frames = ctx.pipeline().get(FrameDecoder.class);
    if (frames != null) {
      frames.authenticated();
    }
  }

  /** Whether this connection has said HELLO (and proved the key): read on its event loop. */
  boolean authenticated() {
    return helloDone;
  }

  /** The client's half of a keyed HELLO: its proof, or the connection ends. */
  private void auth(ChannelHandlerContext ctx, ByteBuf f) {
    byte[] expected = expectedProof;
    ByteBuf in = Frame.skipHeader(f.duplicate());
    if (expected == null || helloDone) {
      fatal(ctx, f, ErrorCode.BAD_REQUEST, "AUTH without a keyed HELLO before it");
      return;
    }
    byte[] proof = new byte[Math.min(in.readableBytes(), ClusterKey.PROOF_BYTES)];
    in.readBytes(proof);
    if (!ClusterKey.same(proof, expected)) {
      server.metrics().connectionRefused("cluster_key");
      fatal(ctx, f, ErrorCode.UNAUTHORIZED, "wrong cluster key");
      return;
    }
    expectedProof = null;
    authenticated(ctx);
    reply(ctx, Codec.frame(ctx.alloc(), Op.AUTH, Frame.FLAG_REPLY, 0, Frame.requestId(f), 0, 0, 0, 0, null));
    server.clients().add(ctx.channel());
  }

  /** The namespace of a page request, checked against its size; null after an error reply. */
  private NamespaceRecord pageRange(ChannelHandlerContext ctx, ByteBuf f, long count) {
    int id = Frame.namespace(f);
    NamespaceRecord ns = namespaces.get(id);
    if (ns == null) {
      error(ctx, f, ErrorCode.NO_NAMESPACE, "no namespace with id " + id);
      return null;
    }
    long first = Frame.firstPage(f);
    if (first >= ns.pages() || count > ns.pages() - first) {
      error(ctx, f, ErrorCode.BAD_REQUEST, "pages " + first + ".." + (first + count - 1)
          + " are outside namespace '" + ns.name() + "' of " + ns.pages() + " pages");
      return null;
    }
    return ns;
  }

  private boolean epochCurrent(ChannelHandlerContext ctx, ByteBuf f, NamespaceRecord ns) {
    if (Frame.epoch(f) < ns.epoch()) {
      error(ctx, f, ErrorCode.STALE_EPOCH, "write with epoch " + Frame.epoch(f) + " to namespace '"
          + ns.name() + "' now at epoch " + ns.epoch());
      return false;
    }
    ControlPlaneFollower cp = server.follower();
    if (cp != null && (Frame.epoch(f) > ns.epoch() || !cp.fresh())) {
      // Only the control plane says which epoch writes: catch up before taking this one.
      cp.syncNow();
      error(ctx, f, ErrorCode.NOT_READY, "server has not caught up with the control plane for namespace '"
          + ns.name() + "' (epoch " + ns.epoch() + ", write at " + Frame.epoch(f) + "); retry");
      return false;
    }
    return true;
  }

  private void put(ChannelHandlerContext ctx, ByteBuf f) {
    int count = Frame.pageCount(f);
    NamespaceRecord ns = pageRange(ctx, f, count);
    if (ns == null || !epochCurrent(ctx, f, ns)) {
      return;
    }
    long reqId = Frame.requestId(f);
    long first = Frame.firstPage(f);
    long stamp = Frame.stamp(f);
    boolean sealed = (Frame.flags(f) & Frame.FLAG_SEALED) != 0;
    Frame.skipHeader(f);
    if (!store.write(ns.id(), first, count, f, stamp, sealed)) {
      ctx.write(Codec.error(ctx.alloc(), Op.PUT, reqId, ns.id(), ErrorCode.NO_SPACE,
          "server has no room for " + count + " pages (" + store.usedPages() + " of "
              + store.capacityPages() + " used)"));
      metrics.error(ErrorCode.NO_SPACE);
      return;
    }
    metrics.written(count);
    ByteBuf out = ctx.alloc().directBuffer(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
    Frame.writeHeader(out, Op.PUT, Frame.FLAG_REPLY, 0, reqId, ns.id(), ns.epoch(), 0, count, 0);
    ctx.write(out, ctx.voidPromise());
  }

  /**
   * GETs of at least this many pages are answered from the store's slots: below it, copying the pages
   * costs less than the reply's views, promise and listener (4 KiB random reads at depth 32 lost 10 %
   * of their IOPS when every GET was lent).
   */
  static final int LEND_FROM_PAGES = 8;

  /** Stamps of one stamped GET, kept per connection (re-replication asks often, one frame at a time). */
  private long[] stampScratch;

  private long[] stampScratch() {
    if (stampScratch == null) {
      stampScratch = new long[Frame.MAX_PAGES];
    }
    return stampScratch;
  }

  /**
   * A GET. Runs of 8 pages or more of unsealed pages are lent by the store instead of copied: the reply
   * is then the header and bitmap, views of the pages' slots, and the stamps, each slot pinned until
   * the reply has been written (or has failed), so that no page written or deleted meanwhile can
   * change what it sends.
   */
  private void get(ChannelHandlerContext ctx, ByteBuf f) {
    int count = Frame.pageCount(f);
    NamespaceRecord ns = pageRange(ctx, f, count);
    if (ns == null) {
      return;
    }
    long first = Frame.firstPage(f);
    int bitmap = Frame.bitmapBytes(count);
    boolean stamps = (Frame.flags(f) & Frame.FLAG_STAMPS) != 0;
    boolean sealed = (Frame.flags(f) & Frame.FLAG_SEALED) != 0;
    int flags = Frame.flags(f) & (Frame.FLAG_STAMPS | Frame.FLAG_SEALED);
    boolean lend = !sealed && count >= LEND_FROM_PAGES && store.pins();
    int headBytes = Frame.LENGTH_FIELD + Frame.HEADER_SIZE + bitmap;
    // Copied: one buffer for it all. Lent: the head, then a message per run of slots and the stamps,
    // written one after the other (nothing can come between them on the loop).
    ByteBuf head = ctx.alloc().directBuffer(lend ? headBytes
        : headBytes + count * (Frame.recordSize(flags) + (stamps ? 8 : 0)));
    Frame.writeHeader(head, Op.GET, Frame.FLAG_REPLY | flags, 0,
        Frame.requestId(f), ns.id(), ns.epoch(), first, count, 0);
    int bitmapAt = head.writerIndex();
    head.writeZero(bitmap);
    PinnedPages pages = lend ? PinnedPages.of(count) : null;
    int present = 0;
    long[] pageStamps = stamps ? stampScratch() : null;
    try {
      for (int i = 0; i < count; i++) {
        long stamp = lend ? store.readPinned(ns.id(), first + i, pages) : store.read(ns.id(), first + i, head, sealed);
        if (stamp != PageStore.NO_STAMP) {
          if (stamps) {
            pageStamps[present] = stamp;
          }
          int word = bitmapAt + ((i >>> 6) << 3);
          head.setLong(word, head.getLong(word) | (1L << (i & 63)));
          present++;
        }
      }
    } catch (RuntimeException e) {
      if (lend) {
        pages.finish();
        pages.releaseViews();
        pages.unpin();
      }
      head.release();
      throw e;
    }
    // Asked by re-replication, which must give a new copy the version of the one it copies.
    ByteBuf tail = lend && stamps ? ctx.alloc().directBuffer(present * 8) : head;
    for (int i = 0; stamps && i < present; i++) {
      tail.writeLong(pageStamps[i]);
    }
    metrics.read(present);
    if (!lend) {
      head.setInt(0, head.readableBytes() - Frame.LENGTH_FIELD);
      ctx.write(head, ctx.voidPromise());
      return;
    }
    pages.finish();
    long frame = head.readableBytes() + pages.bytes() + (stamps ? tail.readableBytes() : 0);
    head.setInt(0, (int) (frame - Frame.LENGTH_FIELD));
    ctx.write(head, ctx.voidPromise());
    for (int i = 0; i < pages.views(); i++) {
      ctx.write(pages.takeView(i), ctx.voidPromise());
    }
    if (stamps) {
      ctx.write(tail, ctx.voidPromise());
    }
    // Writes complete in order: when the empty one after them has, every view has left (or failed).
    ctx.write(Unpooled.EMPTY_BUFFER).addListener(pages);
  }

  private void delete(ChannelHandlerContext ctx, ByteBuf f) {
    long count = Frame.pageCount(f) & 0xffffffffL;
    NamespaceRecord ns = pageRange(ctx, f, count);
    if (ns == null || !epochCurrent(ctx, f, ns)) {
      return;
    }
    long deleted = store.delete(ns.id(), Frame.firstPage(f), count);
    metrics.deleted(deleted);
    reply(ctx, Codec.frame(ctx.alloc(), Op.DELETE, Frame.FLAG_REPLY, 0, Frame.requestId(f), ns.id(),
        ns.epoch(), Frame.firstPage(f), 0, b -> b.writeLong(deleted)));
  }

  private void list(ChannelHandlerContext ctx, ByteBuf f) {
    int id = Frame.namespace(f);
    if (namespaces.get(id) == null) {
      error(ctx, f, ErrorCode.NO_NAMESPACE, "no namespace with id " + id);
      return;
    }
    new ListStream(ctx, id, Frame.requestId(f)).next();
  }

  /**
   * One LIST, answered a frame at a time: the next frame is built only when the previous one has left
   * for the socket, that is as fast as the client reads them. A namespace of millions of pages costs
   * one frame (and one store batch) of memory, and the store is held only per batch.
   */
  private final class ListStream implements ChannelFutureListener, PageStore.PageSink {
    private final ChannelHandlerContext ctx;
    private final int namespace;
    private final long requestId;
    private final ByteBuf entries;
    private long cursor;

    ListStream(ChannelHandlerContext ctx, int namespace, long requestId) {
      this.ctx = ctx;
      this.namespace = namespace;
      this.requestId = requestId;
      this.entries = ctx.alloc().heapBuffer(Frame.MAX_LIST_ENTRIES * Frame.LIST_ENTRY);
    }

    @Override
    public void page(long page, long stamp) {
      entries.writeLong(page).writeLong(stamp);
    }

    void next() {
      try {
        while (entries.readableBytes() < Frame.MAX_LIST_ENTRIES * Frame.LIST_ENTRY && cursor != PageStore.LIST_END) {
          cursor = store.list(namespace, cursor, Frame.MAX_LIST_ENTRIES, this);
        }
      } catch (IllegalStateException closed) {
        entries.release();
        ctx.close();
        return;
      }
      int n = Math.min(Frame.MAX_LIST_ENTRIES, entries.readableBytes() / Frame.LIST_ENTRY);
      boolean more = entries.readableBytes() > n * Frame.LIST_ENTRY || cursor != PageStore.LIST_END;
      ByteBuf out = ctx.alloc().buffer(Frame.LENGTH_FIELD + Frame.HEADER_SIZE + n * Frame.LIST_ENTRY);
      Frame.writeHeader(out, Op.LIST, Frame.FLAG_REPLY | (more ? Frame.FLAG_MORE : 0), 0, requestId, namespace,
          0, 0, n, n * Frame.LIST_ENTRY);
      out.writeBytes(entries, n * Frame.LIST_ENTRY);
      entries.discardReadBytes();
      if (more) {
        ctx.writeAndFlush(out).addListener(this);
      } else {
        entries.release();
        ctx.writeAndFlush(out, ctx.voidPromise());
      }
    }

    @Override
    public void operationComplete(ChannelFuture sent) {
      if (sent.isSuccess() && ctx.channel().isActive()) {
        next();
      } else {
        entries.release();
      }
    }
  }

  private boolean standalone(ChannelHandlerContext ctx, ByteBuf f) {
    if (server.follower() != null) {
      error(ctx, f, ErrorCode.BAD_REQUEST, Op.name(Frame.op(f))
          + " is not for a server that follows a control plane: administer namespaces through it");
      return false;
    }
    return true;
  }

  private void createNamespace(ChannelHandlerContext ctx, ByteBuf f) {
    if (!standalone(ctx, f)) {
      return;
    }
    NamespaceRecord ns = Codec.readNamespace(Frame.skipHeader(f.duplicate()));
    NamespaceRecord stored;
    try {
      stored = namespaces.create(ns);
    } catch (IllegalStateException e) {
      error(ctx, f, ErrorCode.EXISTS, e.getMessage());
      return;
    }
    metrics.namespaceAdded(stored);
    LOG.info("namespace '{}' (id {}, {} bytes, {} replicas)", stored.name(), stored.id(),
        stored.sizeBytes(), stored.replicas());
    reply(ctx, Codec.frame(ctx.alloc(), Op.NS_CREATE, Frame.FLAG_REPLY, 0, Frame.requestId(f),
        stored.id(), stored.epoch(), 0, 0, b -> Codec.writeNamespace(b, stored)));
  }

  private void deleteNamespace(ChannelHandlerContext ctx, ByteBuf f) {
    if (!standalone(ctx, f)) {
      return;
    }
    int id = Frame.namespace(f);
    NamespaceRecord gone = namespaces.remove(id);
    if (gone == null) {
      error(ctx, f, ErrorCode.NO_NAMESPACE, "no namespace with id " + id);
      return;
    }
    long pages = store.deleteNamespace(id);
    metrics.namespaceRemoved(id);
    LOG.info("namespace '{}' deleted with its {} pages", gone.name(), pages);
    reply(ctx, Codec.frame(ctx.alloc(), Op.NS_DELETE, Frame.FLAG_REPLY, 0, Frame.requestId(f), id, 0,
        0, 0, b -> b.writeLong(pages)));
  }

  private void listNamespaces(ChannelHandlerContext ctx, ByteBuf f) {
    List<NamespaceRecord> all = namespaces.list();
    reply(ctx, Codec.frame(ctx.alloc(), Op.NS_LIST, Frame.FLAG_REPLY, 0, Frame.requestId(f), 0, 0, 0,
        all.size(), b -> Codec.writeNamespaces(b, all)));
  }

  private void namespaceInfo(ChannelHandlerContext ctx, ByteBuf f) {
    NamespaceRecord ns = namespaces.get(Frame.namespace(f));
    if (ns == null) {
      error(ctx, f, ErrorCode.NO_NAMESPACE, "no namespace with id " + Frame.namespace(f));
      return;
    }
    long held = store.pageCount(ns.id());
    reply(ctx, Codec.frame(ctx.alloc(), Op.NS_INFO, Frame.FLAG_REPLY, 0, Frame.requestId(f), ns.id(),
        ns.epoch(), 0, 0, b -> {
          Codec.writeNamespace(b, ns);
          b.writeLong(held);
        }));
  }

  private void attach(ChannelHandlerContext ctx, ByteBuf f) {
    ControlPlaneFollower cp = server.follower();
    if (cp != null) {
      // A client that took the namespace over: catch up with the control plane, then answer, so that
      // from the reply on this server refuses the writer it fenced.
      ByteBuf request = f.retainedDuplicate();
      cp.syncNow().whenComplete((v, e) -> ctx.executor().execute(() -> {
        try {
          if (e != null) {
            error(ctx, request, ErrorCode.NOT_READY, "cannot reach the control plane: " + e.getMessage());
          } else {
            describeAttached(ctx, request);
          }
          ctx.flush();
        } finally {
          request.release();
        }
      }));
      return;
    }
    describeAttached(ctx, f);
  }

  private void describeAttached(ChannelHandlerContext ctx, ByteBuf f) {
    NamespaceRecord ns = server.follower() != null ? namespaces.get(Frame.namespace(f))
        : namespaces.raiseEpoch(Frame.namespace(f), Frame.epoch(f));
    if (ns == null) {
      error(ctx, f, ErrorCode.NO_NAMESPACE, "no namespace with id " + Frame.namespace(f));
      return;
    }
    reply(ctx, Codec.frame(ctx.alloc(), Op.NS_ATTACH, Frame.FLAG_REPLY, 0, Frame.requestId(f), ns.id(),
        ns.epoch(), 0, 0, b -> Codec.writeNamespace(b, ns)));
  }

  private void reply(ChannelHandlerContext ctx, ByteBuf frame) {
    ctx.write(frame, ctx.voidPromise());
  }

  private void error(ChannelHandlerContext ctx, ByteBuf f, ErrorCode code, String message) {
    metrics.error(code);
    ctx.write(Codec.error(ctx.alloc(), Frame.op(f), Frame.requestId(f), Frame.namespace(f), code, message),
        ctx.voidPromise());
  }

  /** Answers with an error, then closes this connection: the peer cannot be trusted to continue. */
  private void fatal(ChannelHandlerContext ctx, ByteBuf f, ErrorCode code, String message) {
    LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), message);
    metrics.error(code);
    ctx.writeAndFlush(Codec.error(ctx.alloc(), Frame.op(f), Frame.requestId(f), Frame.namespace(f),
            code, message))
        .addListener(ChannelFutureListener.CLOSE);
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    ctx.flush();
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    // Back-pressure: stop reading requests while replies pile up unsent.
    ctx.channel().config().setAutoRead(ctx.channel().isWritable());
    ctx.fireChannelWritabilityChanged();
  }

  /**
   * With TLS, who the peer is comes from its certificate once the handshake is done: a client role
   * (admin, gateway) is served; a server's certificate, or a failed handshake, ends the connection.
   */
  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof SslHandshakeCompletionEvent done) {
      if (!done.isSuccess()) {
        server.metrics().connectionRefused("tls");
        LOG.warn("TLS with {} failed: {}", ctx.channel().remoteAddress(), done.cause().getMessage());
        ctx.close();
        return;
      }
      try {
        Identity who = ClusterTls.peer(ctx.pipeline().get(SslHandler.class));
        if (who.role() != Role.ADMIN && !who.role().attachesNamespaces()) {
          server.metrics().connectionRefused("role");
          LOG.warn("refusing {} from {}: servers serve admins, gateways and hosts only", who, ctx.channel().remoteAddress());
          ctx.close();
          return;
        }
        peer = who;
      } catch (SSLPeerUnverifiedException | IllegalArgumentException e) {
        server.metrics().connectionRefused("tls");
        LOG.warn("refusing {}: {}", ctx.channel().remoteAddress(), e.getMessage());
        ctx.close();
        return;
      }
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    if (c instanceof ProtocolException) {
      LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), c.getMessage());
      metrics.error(ErrorCode.BAD_REQUEST);
      ctx.writeAndFlush(Codec.error(ctx.alloc(), (byte) 0, 0, 0, ErrorCode.BAD_REQUEST,
              "protocol violation: " + c.getMessage()))
          .addListener(ChannelFutureListener.CLOSE);
    } else if (c instanceof IOException) {
      LOG.debug("connection from {} failed: {}", ctx.channel().remoteAddress(), c.toString());
      ctx.close();
    } else {
      LOG.error("closing connection from {}", ctx.channel().remoteAddress(), c);
      ctx.close();
    }
  }
}
