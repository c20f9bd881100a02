package io.vmd.server;

import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import io.vmd.common.HostPort;
import io.vmd.common.Sizes;
import io.vmd.common.Transports;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.common.tls.SecurityMeters;
import io.vmd.meta.Member;
import io.vmd.meta.MetaException;
import io.vmd.protocol.Availability;
import io.vmd.protocol.Codec;
import io.vmd.protocol.Frame;
import io.vmd.protocol.FrameDecoder;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import io.vmd.server.store.PageStore;
import io.vmd.server.store.PageStores;
import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One vmd-server: a page store behind a Netty frame server, pushing its free memory to clients. */
public final class VmdServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VmdServer.class);

  private final ServerConfig config;
  private final PageStore store;
  private final NamespaceTable namespaces;
  private final ServerMetrics metrics;
  private final long instanceId = new SecureRandom().nextLong();
  private final EventLoopGroup group;
  private final ChannelGroup clients = new DefaultChannelGroup("vmd-clients", GlobalEventExecutor.INSTANCE);
  /** Every open connection, greeted or not (fault injection freezes them all). */
  private final ChannelGroup connections = new DefaultChannelGroup("vmd-connections", GlobalEventExecutor.INSTANCE);
  private Channel listener;
  private ScheduledFuture<?> pushTask;
  /** The link to the control plane, or null for a standalone server. */
  private ControlPlaneFollower follower;

  private VmdServer(ServerConfig config, MeterRegistry registry) {
    this.config = config;
    this.store = PageStores.open(config.store(), config.memoryBytes(), config.dataDir());
    this.namespaces = new NamespaceTable(config.dataDir());
    this.metrics = new ServerMetrics(registry, store);
    SecurityMeters.certificateExpiry(registry, Role.SERVER, config.tls());
    for (NamespaceRecord ns : namespaces.list()) {
      metrics.namespaceAdded(ns);
    }
    int threads = config.ioThreads() > 0 ? config.ioThreads() : Runtime.getRuntime().availableProcessors();
    this.group = Transports.group(threads, "vmd-server");
  }

  /** Opens the store and starts listening. */
  public static VmdServer start(ServerConfig config, MeterRegistry registry) throws InterruptedException {
    VmdServer server = new VmdServer(config, registry);
    try {
      if (config.managed()) {
        server.follower = new ControlPlaneFollower(server, config.meta());
      }
      server.bind();
      if (server.follower != null) {
        server.follower.join(config.advertise() != null ? config.advertise() : server.address());
      }
    } catch (MetaException e) {
      server.close();
      throw new IllegalStateException("cannot join the control plane " + config.meta() + ": " + e.getMessage(), e);
    } catch (RuntimeException | InterruptedException e) {
      server.close();
      throw e;
    }
    return server;
  }

  private void bind() throws InterruptedException {
    ServerBootstrap b = new ServerBootstrap()
        .group(group)
        .channel(Transports.serverChannel())
        .option(ChannelOption.SO_BACKLOG, 1024)
        .option(ChannelOption.SO_REUSEADDR, true)
        .childOption(ChannelOption.TCP_NODELAY, true)
          .childOption(ChannelOption.ALLOCATOR, Transports.allocator())
          .childOption(ChannelOption.RCVBUF_ALLOCATOR, Transports.receiveSizes())
        .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(1 << 20, 8 << 20))
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ServerConfig.Limits limits = config.limits();
            if (connections.size() >= limits.maxConnections()) {
              metrics.connectionRefused("limit");
              LOG.warn("refusing a connection from {}: {} are open, the most this server takes (--max-connections)",
                  ch.remoteAddress(), connections.size());
              ch.close();
              return;
            }
            connections.add(ch);
            if (frozen) {
              ch.config().setAutoRead(false); // a hung host accepts (the kernel does) but answers nothing
            }
            ServerHandler handler = new ServerHandler(VmdServer.this);
            if (config.tls() != null) {
              ch.pipeline().addLast("tls", config.tls().serverHandler(ch.alloc()));
            }
            ch.pipeline().addLast("frames", new FrameDecoder(limits.preAuthFrameBytes(), Frame.MAX_FRAME))
                .addLast("vmd", handler);
            ch.eventLoop().schedule(() -> closeIfSilent(ch, handler), limits.helloTimeout().toMillis(),
                TimeUnit.MILLISECONDS);
          }
        });
    HostPort at = config.listen();
    listener = b.bind(new InetSocketAddress(at.host(), at.port())).sync().channel();
    long every = config.availabilityInterval().toMillis();
    pushTask = group.next().scheduleAtFixedRate(this::pushAvailability, every, every, TimeUnit.MILLISECONDS);
    LOG.info("vmd-server on {} ({} store, {} capacity, {} transport, cluster '{}', {})", address(),
        store.engine(), Sizes.format(config.memoryBytes()), Transports.name(), config.cluster(),
        config.tls() == null ? "plaintext" : "mutual TLS 1.3 as " + config.tls().identity() + " via "
            + ClusterTls.provider());
  }

  /** Connections open now, served or not. */
  int connectionCount() {
    return connections.size();
  }

  /** A connection that has not said HELLO (and proved the key) in time is closed; a frozen server does nothing. */
  private void closeIfSilent(Channel ch, ServerHandler handler) {
    if (!handler.authenticated() && ch.isActive() && !frozen) {
      metrics.connectionRefused("hello_timeout");
      LOG.warn("closing the connection from {}: no HELLO in {} ms", ch.remoteAddress(),
          config.limits().helloTimeout().toMillis());
      ch.close();
    }
  }

  private void pushAvailability() {
    if (clients.isEmpty() || frozen) {
      return;
    }
    ByteBuf frame = Codec.frame(ByteBufAllocator.DEFAULT, Op.AVAILABILITY, 0, 0, 0, 0, 0,
        0, 0, b -> Codec.writeAvailability(b, availability()));
    clients.writeAndFlush(frame);
  }

  public Availability availability() {
    long capacity = store.capacityPages() * Pages.PAGE_SIZE;
    long pages = store.usedPages();
    long used = pages * Pages.PAGE_SIZE;
    return new Availability(capacity, used, Math.max(0, capacity - used), pages);
  }

  /** The address actually bound (with the real port when 0 was asked for). */
  public HostPort address() {
    InetSocketAddress a = (InetSocketAddress) listener.localAddress();
    return new HostPort(config.listen().host(), a.getPort());
  }

  public ServerConfig config() {
    return config;
  }

  public PageStore store() {
    return store;
  }

  public NamespaceTable namespaces() {
    return namespaces;
  }

  ServerMetrics metrics() {
    return metrics;
  }

  long instanceId() {
    return instanceId;
  }

  /** The link to the control plane; null for a standalone server. */
  ControlPlaneFollower follower() {
    return follower;
  }

  /** This server's membership record (slot, status), or null for a standalone server. */
  public Member member() {
    return follower == null ? null : follower.self();
  }

  /** The stable id clients check at HELLO ("" for a standalone server). */
  String serverId() {
    return follower == null ? "" : follower.id();
  }

  boolean frozen() {
    return frozen;
  }

  ChannelGroup clients() {
    return clients;
  }

  private volatile boolean frozen;

  /**
   * Fault injection: a frozen server stops reading requests and reporting, but keeps its connections
   * open, like a hung host or a link that silently drops everything. Thawing resumes both.
   */
  public void freeze(boolean freeze) {
    frozen = freeze;
    // On each connection's own loop, and waited for: a request sent right after this call must not be
    // read by a server that is meant to be hung already.
    connections.forEach(ch -> {
      if (ch.eventLoop().inEventLoop()) {
        ch.config().setAutoRead(!freeze);
      } else {
        ch.eventLoop().submit(() -> ch.config().setAutoRead(!freeze)).awaitUninterruptibly();
      }
    });
  }

  /** Closes every client connection and the listener, then the store. */
  @Override
  public void close() {
    String where = listener != null ? address().toString() : config.listen().toString();
    if (pushTask != null) {
      pushTask.cancel(false);
    }
    if (follower != null) {
      follower.close();
    }
    // Bounded: a loop that no longer runs its tasks would never complete these futures.
    if (listener != null) {
      listener.close().awaitUninterruptibly(Transports.SHUTDOWN_GRACE_SECONDS, TimeUnit.SECONDS);
    }
    connections.close().awaitUninterruptibly(Transports.SHUTDOWN_GRACE_SECONDS, TimeUnit.SECONDS);
    Transports.shutdown(group, 2, "vmd-server on " + where);
    store.close();
    metrics.close();
    LOG.info("vmd-server on {} stopped", where);
  }
}
