package io.vmd.nbd;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.vmd.client.Repairer;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.Transports;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.common.tls.SecurityMeters;
import java.net.InetSocketAddress;
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
    NbdGateway gw = new NbdGateway(config, client, registry);
    try {
      ServerBootstrap b = new ServerBootstrap()
          .group(gw.group)
          .channel(Transports.serverChannel())
          .option(ChannelOption.SO_BACKLOG, 256)
          .option(ChannelOption.SO_REUSEADDR, true)
          .childOption(ChannelOption.TCP_NODELAY, true)
          .childOption(ChannelOption.ALLOCATOR, Transports.allocator())
          .childOption(ChannelOption.RCVBUF_ALLOCATOR, Transports.receiveSizes())
          .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(32 << 10, 64 << 10))
          .childHandler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
              gw.connections.add(ch);
              ch.pipeline().addLast("nbd-negotiation", new NbdNegotiation(gw));
            }
          });
      HostPort at = config.listen();
      gw.listener = b.bind(new InetSocketAddress(at.host(), at.port())).sync().channel();
    } catch (RuntimeException | InterruptedException e) {
      gw.close();
      throw e;
    }
    gw.repairer.start();
    LOG.info("NBD gateway on {} ({} transport)", gw.address(), Transports.name());
    return gw;
  }

  public HostPort address() {
    InetSocketAddress a = (InetSocketAddress) listener.localAddress();
    return new HostPort(config.listen().host(), a.getPort());
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
    connections.close().syncUninterruptibly();
    exports.close();
  }
}
