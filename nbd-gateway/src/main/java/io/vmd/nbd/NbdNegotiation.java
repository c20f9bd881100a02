package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.ScheduledFuture;
import io.vmd.client.VmdException;
import io.vmd.common.Sizes;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.meta.NamespaceMeta;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.NamespaceRecord;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The handshake of one NBD connection (fixed newstyle): greeting, client flags, then options until
 * NBD_OPT_GO or NBD_OPT_EXPORT_NAME moves the connection to transmission. Options that need the
 * cluster (LIST, INFO, GO) complete asynchronously; bytes that arrive meanwhile wait in the buffer, so
 * options are still answered one by one, in order. The buffer holds at most one option and one socket
 * read: reading stops while an option is being answered, while a whole option is already buffered, and
 * while the client does not take the replies (a flood of options that never reads the answers costs
 * the gateway nothing). A client that has not finished negotiating within the gateway's handshake
 * timeout is disconnected.
 */
final class NbdNegotiation extends ChannelInboundHandlerAdapter {
  private static final Logger LOG = LoggerFactory.getLogger(NbdNegotiation.class);
  private static final int TRANSMISSION_FLAGS = NbdProtocol.FLAG_HAS_FLAGS | NbdProtocol.FLAG_SEND_FLUSH | NbdProtocol.FLAG_SEND_FUA
      | NbdProtocol.FLAG_SEND_TRIM | NbdProtocol.FLAG_SEND_WRITE_ZEROES | NbdProtocol.FLAG_SEND_CACHE | NbdProtocol.FLAG_CAN_MULTI_CONN;

  private final NbdGateway gateway;
  private boolean tlsActive;
  private ByteBuf buf;
  private boolean flagsRead;
  private boolean noZeroes;
  private boolean busy;
  private boolean done;
  private boolean structured;
  private boolean allocationContext;
  private ScheduledFuture<?> deadline;

  NbdNegotiation(NbdGateway gateway) {
    this.gateway = gateway;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    buf = ctx.alloc().buffer(512);
    long ms = gateway.config().handshakeTimeout().toMillis();
    deadline = ctx.executor().schedule(() -> {
      if (!done && ctx.channel().isActive()) {
        LOG.warn("closing NBD connection from {}: no export chosen within {} ms", ctx.channel().remoteAddress(), ms);
        done = true;
        ctx.close();
      }
    }, ms, TimeUnit.MILLISECONDS);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    if (deadline != null) {
      deadline.cancel(false);
    }
    if (buf != null) {
      buf.release();
      buf = null;
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    process(ctx);
    ctx.fireChannelWritabilityChanged();
  }

  /** Reads on only while nothing is pending: no option being answered or buffered, replies taken. */
  private void updateReading(ChannelHandlerContext ctx) {
    if (done || buf == null) {
      return;
    }
    boolean stop = busy || !ctx.channel().isWritable() || buf.readableBytes() >= 16 + NbdProtocol.MAX_OPTION + 4;
    if (ctx.channel().config().isAutoRead() == stop) {
      ctx.channel().config().setAutoRead(!stop);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    ByteBuf greeting = ctx.alloc().buffer(18);
    greeting.writeLong(NbdProtocol.NBDMAGIC).writeLong(NbdProtocol.IHAVEOPT)
        .writeShort(NbdProtocol.FLAG_FIXED_NEWSTYLE | NbdProtocol.FLAG_NO_ZEROES);
    ctx.writeAndFlush(greeting);
    ctx.fireChannelActive();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf in = (ByteBuf) msg;
    try {
      if (buf != null) {
        buf.writeBytes(in);
      }
    } finally {
      in.release();
    }
    process(ctx);
  }

  private void process(ChannelHandlerContext ctx) {
    while (!busy && !done && buf != null && ctx.channel().isActive() && ctx.channel().isWritable()) {
      if (!flagsRead) {
        if (buf.readableBytes() < 4) {
          break;
        }
        int clientFlags = buf.readInt();
        if ((clientFlags & ~(NbdProtocol.FLAG_C_FIXED_NEWSTYLE | NbdProtocol.FLAG_C_NO_ZEROES)) != 0) {
          violation(ctx, String.format("unknown client flags 0x%x", clientFlags));
          return;
        }
        noZeroes = (clientFlags & NbdProtocol.FLAG_C_NO_ZEROES) != 0;
        flagsRead = true;
        continue;
      }
      if (buf.readableBytes() < 16) {
        break;
      }
      int at = buf.readerIndex();
      if (buf.getLong(at) != NbdProtocol.IHAVEOPT) {
        violation(ctx, String.format("bad option magic 0x%016x", buf.getLong(at)));
        return;
      }
      int option = buf.getInt(at + 8);
      long length = buf.getUnsignedInt(at + 12);
      if (length > NbdProtocol.MAX_OPTION) {
        violation(ctx, "option " + option + " of " + length + " bytes is over the " + NbdProtocol.MAX_OPTION + " limit");
        return;
      }
      if (buf.readableBytes() < 16 + length) {
        break;
      }
      buf.skipBytes(16);
      ByteBuf data = buf.readSlice((int) length);
      try {
        option(ctx, option, data);
      } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
        reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "malformed option data: " + e.getMessage());
      }
    }
    if (buf != null) {
      buf.discardSomeReadBytes();
    }
    updateReading(ctx);
  }

  private void option(ChannelHandlerContext ctx, int option, ByteBuf data) {
    if (gateway.tls() != null && !tlsActive && option != NbdProtocol.OPT_STARTTLS && option != NbdProtocol.OPT_ABORT) {
      // TLS is configured, so it is required: nothing about the exports before it.
      if (option == NbdProtocol.OPT_EXPORT_NAME) {
        violation(ctx, "NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS on a gateway that requires TLS");
      } else {
        reply(ctx, option, NbdProtocol.REP_ERR_TLS_REQD, "this gateway requires TLS: send NBD_OPT_STARTTLS first");
      }
      return;
    }
    switch (option) {
      case NbdProtocol.OPT_EXPORT_NAME:
        exportName(ctx, string(data, data.readableBytes()));
        break;
      case NbdProtocol.OPT_ABORT:
        done = true;
        ctx.writeAndFlush(optionReply(ctx, option, NbdProtocol.REP_ACK, 0)).addListener(ChannelFutureListener.CLOSE);
        break;
      case NbdProtocol.OPT_LIST:
        if (data.isReadable()) {
          reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
        } else {
          list(ctx);
        }
        break;
      case NbdProtocol.OPT_STARTTLS:
        if (gateway.tls() == null) {
          reply(ctx, option, NbdProtocol.REP_ERR_POLICY, "TLS is not configured on this gateway");
        } else if (tlsActive || data.isReadable()) {
          reply(ctx, option, NbdProtocol.REP_ERR_INVALID, tlsActive ? "TLS is already on" : "NBD_OPT_STARTTLS takes no data");
        } else {
          // The ACK goes in the clear; everything after it, both ways, inside TLS (the client starts it).
          ctx.writeAndFlush(optionReply(ctx, option, NbdProtocol.REP_ACK, 0));
          ctx.pipeline().addFirst("tls", gateway.tls().newHandler(ctx.alloc()));
          tlsActive = true;
          discardPlaintext(ctx);
        }
        break;
      case NbdProtocol.OPT_INFO:
      case NbdProtocol.OPT_GO:
        infoOrGo(ctx, option, data);
        break;
      case NbdProtocol.OPT_STRUCTURED_REPLY:
        if (data.isReadable()) {
          reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
        } else {
          structured = true;
          reply(ctx, option, NbdProtocol.REP_ACK, null);
        }
        break;
      case NbdProtocol.OPT_LIST_META_CONTEXT:
      case NbdProtocol.OPT_SET_META_CONTEXT:
        metaContext(ctx, option, data);
        break;
      default:
        reply(ctx, option, NbdProtocol.REP_ERR_UNSUP, "option " + option + " is not supported");
    }
  }

  /**
   * Bytes that came after NBD_OPT_STARTTLS but before TLS started are dropped unread: whoever is on the
   * path could have injected them, and acted on inside TLS they would pass for the client's (the
   * STARTTLS injection nbdkit fixed as CVE-2021-3716). A real client waits for the ACK and sends none.
   */
  private void discardPlaintext(ChannelHandlerContext ctx) {
    int injected = buf.readableBytes();
    if (injected > 0) {
      LOG.warn("dropping {} bytes that {} sent in the clear after NBD_OPT_STARTTLS", injected,
          ctx.channel().remoteAddress());
      buf.skipBytes(injected);
    }
  }

  private String exportNameOrDefault(String name) {
    if (name.isEmpty() && gateway.config().defaultExport() != null) {
      return gateway.config().defaultExport();
    }
    return name;
  }

  private void exportName(ChannelHandlerContext ctx, String requested) {
    String name = exportNameOrDefault(requested);
    async(ctx, granted(ctx, name, () -> gateway.exports().open(name)), (export, err) -> {
      if (err != null) {
        // NBD_OPT_EXPORT_NAME cannot answer with an error: the protocol says to close.
        LOG.warn("closing connection from {}: export '{}': {}", ctx.channel().remoteAddress(), name, message(err));
        done = true;
        ctx.close();
        return;
      }
      ByteBuf out = ctx.alloc().buffer(10 + 124);
      out.writeLong(export.size()).writeShort(TRANSMISSION_FLAGS);
      if (!noZeroes) {
        out.writeZero(124);
      }
      ctx.write(out);
      transmission(ctx, export);
    });
  }

  private void list(ChannelHandlerContext ctx) {
    async(ctx, gateway.exports().list().thenCombine(grantedNames(peer(ctx)), (all, mine) -> {
      List<NamespaceRecord> shown = new ArrayList<>();
      for (NamespaceRecord ns : all) {
        if (mine == null || mine.contains(ns.name())) {
          shown.add(ns);
        }
      }
      return shown;
    }), (all, err) -> {
      if (err != null) {
        reply(ctx, NbdProtocol.OPT_LIST, NbdProtocol.REP_ERR_SHUTDOWN, "cannot list namespaces: " + message(err));
        return;
      }
      for (NamespaceRecord ns : all) {
        byte[] name = ns.name().getBytes(StandardCharsets.UTF_8);
        byte[] description = description(ns).getBytes(StandardCharsets.UTF_8);
        ByteBuf r = optionReply(ctx, NbdProtocol.OPT_LIST, NbdProtocol.REP_SERVER, 4 + name.length + description.length);
        r.writeInt(name.length).writeBytes(name).writeBytes(description);
        ctx.write(r);
      }
      reply(ctx, NbdProtocol.OPT_LIST, NbdProtocol.REP_ACK, null);
    });
  }

  private static String description(NamespaceRecord ns) {
    return "VMD namespace " + ns.name() + " (" + Sizes.format(ns.sizeBytes()) + ", "
        + ns.replicas() + " replica" + (ns.replicas() == 1 ? "" : "s") + ")";
  }

  private void infoOrGo(ChannelHandlerContext ctx, int option, ByteBuf data) {
    long nameLength = data.readUnsignedInt();
    if (nameLength > NbdProtocol.MAX_STRING || nameLength > data.readableBytes() - 2) {
      reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "export name length " + nameLength + " does not fit the option");
      return;
    }
    String name = exportNameOrDefault(string(data, (int) nameLength));
    int requests = data.readUnsignedShort();
    if (data.readableBytes() != requests * 2) {
      reply(ctx, option, NbdProtocol.REP_ERR_INVALID, requests + " information requests do not fit the option");
      return;
    }
    boolean wantName = false;
    boolean wantDescription = false;
    for (int i = 0; i < requests; i++) {
      int type = data.readUnsignedShort();
      wantName |= type == NbdProtocol.INFO_NAME;
      wantDescription |= type == NbdProtocol.INFO_DESCRIPTION;
    }
    boolean go = option == NbdProtocol.OPT_GO;
    boolean sendName = wantName;
    boolean sendDescription = wantDescription;
    if (go) {
      async(ctx, granted(ctx, name, () -> gateway.exports().open(name)), (export, err) -> {
        if (err != null) {
          unknown(ctx, option, name, err);
          return;
        }
        sendInfo(ctx, option, export.namespace.record(), TRANSMISSION_FLAGS, sendName,
            sendDescription);
        transmission(ctx, export);
      });
    } else {
      async(ctx, granted(ctx, name, () -> gateway.exports().describe(name)), (described, err) -> {
        if (err != null) {
          unknown(ctx, option, name, err);
          return;
        }
        sendInfo(ctx, option, described, TRANSMISSION_FLAGS, sendName, sendDescription);
      });
    }
  }

  // ---------------------------------------------------------------- grants (with --tls-verify-peer)

  /** The client's identity from its certificate (TLS is on by the time options are read), or null. */
  private static Identity peer(ChannelHandlerContext ctx) {
    SslHandler h = ctx.pipeline().get(SslHandler.class);
    try {
      return h == null ? null : ClusterTls.peer(h);
    } catch (SSLPeerUnverifiedException | IllegalArgumentException e) {
      return null;
    }
  }

  /**
   * {@code action} when this client may open {@code name}: always, unless the gateway verifies peers;
   * then admins may open all, others what is granted to their certificate's name. Otherwise a failed
   * future (UNAUTHORIZED).
   */
  private <T> CompletableFuture<T> granted(ChannelHandlerContext ctx, String name, Supplier<CompletableFuture<T>> action) {
    Identity who = peer(ctx);
    return grantedNames(who).thenCompose(mine -> mine == null || mine.contains(name) ? action.get()
        : CompletableFuture.failedFuture(new VmdException(ErrorCode.UNAUTHORIZED,
            (who == null ? "a client without a usable certificate" : who.toString()) + " is not granted export '"
                + name + "' (vmd ns grant)")));
  }

  /**
   * The namespaces client {@code who} is granted, or null when it may open all: the gateway does not
   * verify peers, or {@code who} is an admin.
   */
  private CompletableFuture<Set<String>> grantedNames(Identity who) {
    if (!gateway.verifiesPeers() || who != null && who.role() == Role.ADMIN) {
      return CompletableFuture.completedFuture(null);
    }
    if (who == null) {
      return CompletableFuture.completedFuture(Set.of());
    }
    return gateway.client().namespaces().listAsync().thenApply(all -> {
      Set<String> mine = new HashSet<>();
      for (NamespaceMeta n : all) {
        if (n.grantedTo(who.name())) {
          mine.add(n.name());
        }
      }
      return mine;
    });
  }

  private void unknown(ChannelHandlerContext ctx, int option, String name, Throwable err) {
    VmdException v = VmdException.from(err);
    if (v.code() == ErrorCode.UNAUTHORIZED) {
      gateway.refused("grant");
      LOG.warn("NBD client {}: {}", ctx.channel().remoteAddress(), v.getMessage());
      reply(ctx, option, NbdProtocol.REP_ERR_POLICY, v.getMessage());
    } else if (v.code() == ErrorCode.NO_NAMESPACE) {
      reply(ctx, option, NbdProtocol.REP_ERR_UNKNOWN, "no export named '" + name + "'");
    } else {
      reply(ctx, option, NbdProtocol.REP_ERR_SHUTDOWN, "export '" + name + "' is unavailable: " + v.getMessage());
    }
  }

  private void sendInfo(ChannelHandlerContext ctx, int option, NamespaceRecord ns, int flags, boolean name,
      boolean description) {
    ByteBuf export = optionReply(ctx, option, NbdProtocol.REP_INFO, 12);
    export.writeShort(NbdProtocol.INFO_EXPORT).writeLong(ns.sizeBytes()).writeShort(flags);
    ctx.write(export);
    if (name) {
      byte[] n = ns.name().getBytes(StandardCharsets.UTF_8);
      ctx.write(optionReply(ctx, option, NbdProtocol.REP_INFO, 2 + n.length).writeShort(NbdProtocol.INFO_NAME).writeBytes(n));
    }
    if (description) {
      byte[] d = description(ns).getBytes(StandardCharsets.UTF_8);
      ctx.write(optionReply(ctx, option, NbdProtocol.REP_INFO, 2 + d.length).writeShort(NbdProtocol.INFO_DESCRIPTION).writeBytes(d));
    }
    // Any alignment works (sub-page I/O is read-modify-write); 4 KiB is the page.
    ByteBuf sizes = optionReply(ctx, option, NbdProtocol.REP_INFO, 14);
    sizes.writeShort(NbdProtocol.INFO_BLOCK_SIZE).writeInt(1).writeInt(4096).writeInt(NbdProtocol.MAX_PAYLOAD);
    ctx.write(sizes);
    reply(ctx, option, NbdProtocol.REP_ACK, null);
  }

  private void metaContext(ChannelHandlerContext ctx, int option, ByteBuf data) {
    if (!structured) {
      reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first");
      return;
    }
    long nameLength = data.readUnsignedInt();
    if (nameLength > NbdProtocol.MAX_STRING || nameLength > data.readableBytes()) {
      reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "export name length does not fit the option");
      return;
    }
    data.skipBytes((int) nameLength);
    long queries = data.readUnsignedInt();
    List<String> matches = new ArrayList<>();
    if (queries == 0 && option == NbdProtocol.OPT_LIST_META_CONTEXT) {
      matches.add(NbdProtocol.BASE_ALLOCATION);
    }
    for (long i = 0; i < queries; i++) {
      long length = data.readUnsignedInt();
      if (length > NbdProtocol.MAX_STRING || length > data.readableBytes()) {
        reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "query length does not fit the option");
        return;
      }
      String query = string(data, (int) length);
      boolean match = query.equals(NbdProtocol.BASE_ALLOCATION)
          || (option == NbdProtocol.OPT_LIST_META_CONTEXT && query.equals("base:"));
      if (match && !matches.contains(NbdProtocol.BASE_ALLOCATION)) {
        matches.add(NbdProtocol.BASE_ALLOCATION);
      }
    }
    if (data.isReadable()) {
      reply(ctx, option, NbdProtocol.REP_ERR_INVALID, "trailing bytes after the queries");
      return;
    }
    if (option == NbdProtocol.OPT_SET_META_CONTEXT) {
      allocationContext = !matches.isEmpty();
    }
    for (String m : matches) {
      byte[] n = m.getBytes(StandardCharsets.UTF_8);
      int id = option == NbdProtocol.OPT_SET_META_CONTEXT ? NbdProtocol.ALLOCATION_CONTEXT_ID : 0;
      ctx.write(optionReply(ctx, option, NbdProtocol.REP_META_CONTEXT, 4 + n.length).writeInt(id).writeBytes(n));
    }
    reply(ctx, option, NbdProtocol.REP_ACK, null);
  }

  /** Hands the connection to the transmission phase, with any bytes the client already sent. */
  private void transmission(ChannelHandlerContext ctx, Export export) {
    done = true;
    ctx.flush();
    ChannelPipeline p = ctx.pipeline();
    p.addLast("nbd-requests", new NbdRequestDecoder());
    p.addLast("nbd-session", new NbdSession(export, structured, allocationContext, gateway.budget()));
    ctx.channel().config().setAutoRead(true);
    ByteBuf rest = buf.isReadable() ? buf.readRetainedSlice(buf.readableBytes()) : null;
    p.remove(this);
    LOG.debug("{} attached to export '{}'", ctx.channel().remoteAddress(), export.name());
    if (rest != null) {
      p.fireChannelRead(rest);
      p.fireChannelReadComplete();
    }
  }

  /** Runs {@code then} on this connection's event loop when {@code f} completes, holding options back meanwhile. */
  private <T> void async(ChannelHandlerContext ctx, CompletableFuture<T> f, BiConsumer<T, Throwable> then) {
    busy = true;
    updateReading(ctx);
    f.whenComplete((v, err) -> ctx.executor().execute(() -> {
      busy = false;
      if (!ctx.channel().isActive()) {
        return;
      }
      then.accept(v, err);
      process(ctx);
    }));
  }

  private ByteBuf optionReply(ChannelHandlerContext ctx, int option, int type, int length) {
    ByteBuf r = ctx.alloc().buffer(20 + length);
    r.writeLong(NbdProtocol.OPTION_REPLY_MAGIC).writeInt(option).writeInt(type).writeInt(length);
    return r;
  }

  private void reply(ChannelHandlerContext ctx, int option, int type, String message) {
    byte[] m = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
    ctx.writeAndFlush(optionReply(ctx, option, type, m.length).writeBytes(m));
  }

  private void violation(ChannelHandlerContext ctx, String why) {
    LOG.warn("closing NBD connection from {}: {}", ctx.channel().remoteAddress(), why);
    done = true;
    ctx.close();
  }

  private static String string(ByteBuf data, int length) {
    String s = data.toString(data.readerIndex(), length, StandardCharsets.UTF_8);
    data.skipBytes(length);
    return s;
  }

  private static String message(Throwable err) {
    return VmdException.from(err).getMessage();
  }

  /** A client whose TLS handshake fails (no certificate, another CA, an expired one) is counted once. */
  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof SslHandshakeCompletionEvent done && done.cause() instanceof SSLException) {
      gateway.refused("tls");
      LOG.warn("NBD client {}: TLS handshake failed: {}", ctx.channel().remoteAddress(), done.cause().getMessage());
    }
    super.userEventTriggered(ctx, evt);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // Said at INFO: a client cut off in the handshake otherwise leaves no trace of why.
    LOG.info("NBD connection from {} failed during negotiation: {}", ctx.channel().remoteAddress(), cause.toString());
    ctx.close();
  }
}
