package io.vmd.nbd;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.vmd.client.Repairer;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.SocketActivation;
import io.vmd.common.Transports;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.common.tls.SecurityMeters;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NBD server: each namespace of the cluster is one export. NBD connections are served on the
 * client's own event loops, so that a request, the cluster I/O it causes and its reply all run on
 * one thread: no hand-off between threads on the data path.
 */
public final class NbdGateway implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(NbdGateway.class);

  private final GatewayConfig config;
  private final ExportRegistry exports;
  private final EventLoopGroup group;
  private final ChannelGroup connections = new DefaultChannelGroup("nbd", GlobalEventExecutor.INSTANCE);
  private final Repairer repairer;
  private final SslContext tls;
  private final VmdClient client;
  private final GatewayBudget budget;
  private final MeterRegistry registry;
  private Channel listener;
  private Channel unixListener;

  private NbdGateway(GatewayConfig config, VmdClient client, MeterRegistry registry) {
    this.config = config;
    this.client = client;
    this.registry = registry;
    this.repairer = new Repairer(client, config.rereplicateAfter(), config.rereplicatePagesPerSecond());
    this.exports = new ExportRegistry(client, registry, repairer);
    this.group = client.eventLoopGroup();
    this.budget = new GatewayBudget(config.totalBudget(), config.connectionBudget(), registry);
    // Sealed page copies a server returned bad (failed tag, or older than the newest known).
    SecurityMeters.authFailures(registry, "gateway", "seal", client, VmdClient::sealFailureCount);
    ClusterTls tls = client.config().tls();
    SecurityMeters.certificateExpiry(registry, tls == null ? Role.GATEWAY : tls.identity().role(), tls);
    Gauge.builder("vmd.gateway.servers.queued", client, VmdClient::queuedBytes)
        .description("request bytes queued for servers that do not take them (bounded by --max-queued per server)")
        .baseUnit("bytes").register(registry);
    if (config.tlsCert() != null && config.tlsKey() != null) {
      try {
        SslContextBuilder b = SslContextBuilder.forServer(config.tlsCert().toFile(), config.tlsKey().toFile())
            .sslProvider(SslProvider.JDK);
        if (config.verifyPeerCa() != null) {
          b.trustManager(config.verifyPeerCa().toFile()).clientAuth(ClientAuth.REQUIRE);
        }
        this.tls = b.build();
      } catch (SSLException | IllegalArgumentException e) {
        throw new IllegalArgumentException("cannot use the TLS certificate " + config.tlsCert() + " and key "
            + config.tlsKey() + ": " + e.getMessage(), e);
      }
    } else {
      this.tls = null;
    }
  }

  VmdClient client() {
    return client;
  }

  /** Counts an NBD client refused for who it is: {@code tls} (its handshake failed) or {@code grant}. */
  void refused(String reason) {
    SecurityMeters.authFailure(registry, "gateway", reason);
  }

  /** Whether NBD clients must show a certificate and are held to their grants. */
  boolean verifiesPeers() {
    return config.verifyPeerCa() != null;
  }

  /** The TLS context when STARTTLS is configured (and required), else null. */
  SslContext tls() {
    return tls;
  }

  public static NbdGateway start(GatewayConfig config, VmdClient client, MeterRegistry registry)
      throws InterruptedException {
    if (config.listen() == null && config.unixSocket() == null && config.activated().isEmpty()) {
      throw new IllegalArgumentException("a gateway needs a TCP address or a Unix socket to serve on");
    }
    NbdGateway gw = new NbdGateway(config, client, registry);
    try {
      HostPort at = config.listen();
      if (!config.activated().isEmpty()) {
        gw.adopt(config.activated());
      } else if (at != null) {
        ServerBootstrap b = gw.bootstrap().channel(Transports.serverChannel())
            .option(ChannelOption.SO_REUSEADDR, true)
            .childOption(ChannelOption.TCP_NODELAY, true);
        gw.listener = b.bind(new InetSocketAddress(at.host(), at.port())).sync().channel();
      }
      if (config.unixSocket() != null && config.activated().isEmpty()) {
        gw.unixListener = gw.bindUnix(config.unixSocket());
      }
    } catch (IOException e) {
      gw.close();
      throw new UncheckedIOException(e.getMessage(), e);
    } catch (RuntimeException | InterruptedException e) {
      gw.close();
      throw e;
    }
    gw.repairer.start();
    LOG.info("NBD gateway on {}{} ({} transport{})", gw.address() == null ? "" : gw.address(),
        gw.unixListener == null ? "" : (gw.address() == null ? "" : " and ") + "unix socket " + gw.unixSocket(),
        Transports.name(), config.activated().isEmpty() ? "" : ", sockets from systemd");
    return gw;
  }

  /**
   * Serves the listening sockets systemd passed in: registered, not bound (they already listen), so
   * clients that connected while no gateway ran are accepted now. One TCP and one Unix socket at most.
   */
  private void adopt(List<SocketActivation.Listener> sockets) throws InterruptedException {
    for (SocketActivation.Listener l : sockets) {
      if ((l.unix() ? unixListener : listener) != null) {
        throw new IllegalArgumentException("socket activation passed more than one " + (l.unix() ? "Unix" : "TCP")
            + " socket: a gateway serves one of each");
      }
      ServerBootstrap b = bootstrap().channelFactory(() -> Transports.inheritedServerChannel(l));
      if (!l.unix()) {
        b.childOption(ChannelOption.TCP_NODELAY, true);
      }
      Channel ch = b.register().sync().channel();
      if (l.unix()) {
        unixListener = ch;
      } else {
        listener = ch;
      }
    }
  }

  /** A listener's bootstrap (its channel still to be set): the client's event loops, its allocator, the NBD handshake first. */
  private ServerBootstrap bootstrap() {
    return new ServerBootstrap()
        .group(group)
        .option(ChannelOption.SO_BACKLOG, 256)
        .childOption(ChannelOption.ALLOCATOR, Transports.allocator())
        .childOption(ChannelOption.RCVBUF_ALLOCATOR, Transports.receiveSizes())
        .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(32 << 10, 64 << 10))
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            connections.add(ch);
            ch.pipeline().addLast("nbd-negotiation", new NbdNegotiation(NbdGateway.this));
          }
        });
  }

  /**
   * Listens on the Unix socket {@code socket}, mode 0600. It is bound in a fresh 0700 directory beside
   * it, made 0600 there and then renamed into place, so no other user can ever connect to it. A socket
   * left by a gateway that died is replaced; one that still answers, or any other file, is an error.
   */
  private Channel bindUnix(Path socket) throws IOException, InterruptedException {
    Path parent = socket.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()) {
        throw new IOException(socket + " exists and is not a socket: give --unix another path");
      }
      if (answers(socket)) {
        throw new IOException("another process serves on " + socket);
      }
      Files.delete(socket); // left by a process that is gone
    }
    Path staging = Files.createTempDirectory(parent, ".vmd-nbd-");
    Path bound = staging.resolve("nbd.sock");
    try {
      Channel ch = bootstrap().channel(Transports.serverDomainChannel()).bind(Transports.domainAddress(bound)).sync().channel();
      try {
        Files.setPosixFilePermissions(bound, PosixFilePermissions.fromString("rw-------"));
        Files.move(bound, socket, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException | RuntimeException e) {
        ch.close().syncUninterruptibly();
        throw e;
      }
      return ch;
    } finally {
      Files.deleteIfExists(bound);
      Files.deleteIfExists(staging);
    }
  }

  private static boolean answers(Path socket) {
    try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
      return true;
    } catch (IOException refused) {
      return false;
    }
  }

  /** The TCP address NBD is served on, or null when it is served on a Unix socket only. */
  public HostPort address() {
    if (listener == null) {
      return null;
    }
    InetSocketAddress a = (InetSocketAddress) listener.localAddress();
    return new HostPort(config.listen() != null ? config.listen().host() : a.getAddress().getHostAddress(), a.getPort());
  }

  /** The Unix socket NBD is served on, or null. */
  public Path unixSocket() {
    if (unixListener == null) {
      return null;
    }
    if (config.activated().isEmpty()) {
      return config.unixSocket();
    }
    return config.activated().stream().filter(SocketActivation.Listener::unix).findFirst()
        .map(SocketActivation.Listener::path).orElse(null);
  }

  GatewayConfig config() {
    return config;
  }

  /** NBD connections open now (negotiating or attached). */
  int connectionCount() {
    return connections.size();
  }

  /** Per connection: what its session holds (for tests that look for a leak). */
  String describeConnections() {
    StringBuilder b = new StringBuilder();
    for (Channel ch : connections) {
      NbdSession s = (NbdSession) ch.pipeline().get("nbd-session");
      b.append(ch.remoteAddress()).append(" active=").append(ch.isActive())
          .append(s == null ? " negotiating" : " " + s.describe()).append('\n');
    }
    return b.toString();
  }

  GatewayBudget budget() {
    return budget;
  }

  /** Bytes the NBD connections hold now (payloads received, replies not yet sent). */
  public long budgetUsed() {
    return budget.used();
  }

  /**
   * Claims the namespace for this gateway now, attaching it if no connection has opened it yet: for a
   * migration's switch-over, so that the destination's gateway owns the namespace from the moment the
   * source's is fenced, and no other gateway can take it in between. Completes with whether this
   * gateway may write it now.
   */
  public CompletableFuture<Boolean> claim(String namespace) {
    return exports.open(namespace).thenApply(e -> e.namespace.writable());
  }

  ExportRegistry exports() {
    return exports;
  }

  /** Per-namespace counters of an export that has been opened, or null. */
  public ExportMetrics metrics(String namespace) {
    Export e = exports.peek(namespace);
    return e == null ? null : e.metrics;
  }

  private final AtomicBoolean closed = new AtomicBoolean();

  /** Stops listening, closes every NBD connection and detaches the exports; a second call does nothing. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    repairer.close();
    if (listener != null) {
      listener.close().syncUninterruptibly();
    }
    if (unixListener != null) {
      unixListener.close().syncUninterruptibly();
    }
    // A socket systemd made is systemd's: it stays for the next gateway.
    if (unixListener != null && config.activated().isEmpty()) {
      try {
        Files.deleteIfExists(config.unixSocket());
      } catch (IOException e) {
        LOG.warn("could not remove the NBD socket {}: {}", config.unixSocket(), e.getMessage());
      }
    }
    connections.close().syncUninterruptibly();
    exports.close();
  }
}
