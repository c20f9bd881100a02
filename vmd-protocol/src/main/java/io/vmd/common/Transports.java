package io.vmd.common;

import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Picks Netty's native epoll transport when it loads on this host, NIO otherwise. */
public final class Transports {
  private static final Logger LOG = LoggerFactory.getLogger(Transports.class);
  /** How long a stop waits past its own timeout for what a loop should have finished. */
  public static final long SHUTDOWN_GRACE_SECONDS = 5;
  private static final boolean EPOLL =
      !Boolean.getBoolean("vmd.transport.nio") && Epoll.isAvailable();

  private Transports() {}

  /**
   * The buffer allocator of every VMD channel: Netty's pooled arenas rather than 4.2's adaptive
   * default, because slices of pooled buffers are themselves recycled. Decoding a frame, a
   * request's payload or a page run of it is then garbage-free (adaptive buffers slice into a new
   * object each time: about 48 bytes per frame on the data path).
   */
  public static ByteBufAllocator allocator() {
    return PooledByteBufAllocator.DEFAULT;
  }

  /**
   * How much each socket read asks for: Netty's adaptive guess, but growing to 1 MiB rather than
   * 64 KiB, because page frames are up to 4 MiB and a sequential reader streams them back to back.
   */
  public static RecvByteBufAllocator receiveSizes() {
    return new AdaptiveRecvByteBufAllocator(512, 16 << 10, 1 << 20);
  }

  public static boolean epoll() {
    return EPOLL;
  }

  public static String name() {
    return EPOLL ? "epoll" : "nio";
  }

  public static EventLoopGroup group(int threads, String name) {
    IoHandlerFactory factory = EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    return new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory(name, true), factory);
  }

  /**
   * Shuts {@code group} down (at most {@code seconds} for tasks still coming) and waits for its threads
   * a few seconds longer, not forever: a loop thread that died without terminating (seen when a running
   * JVM's jar was overwritten under it) must not keep a stopping process alive.
   *
   * @return whether every loop terminated in time (if not, a warning names {@code what})
   */
  public static boolean shutdown(EventLoopGroup group, long seconds, String what) {
    boolean done = group.shutdownGracefully(0, seconds, TimeUnit.SECONDS)
        .awaitUninterruptibly(seconds + SHUTDOWN_GRACE_SECONDS, TimeUnit.SECONDS);
    if (!done) {
      LOG.warn("{}: event loops still running {} s after shutdown began; going on without them", what,
          seconds + SHUTDOWN_GRACE_SECONDS);
    }
    return done;
  }

  public static Class<? extends ServerSocketChannel> serverChannel() {
    return EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
  }

  public static Class<? extends SocketChannel> clientChannel() {
    return EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
  }

  /** A listener on a Unix socket, for the same event loops as {@link #serverChannel()}. */
  public static Class<? extends ServerChannel> serverDomainChannel() {
    return EPOLL ? EpollServerDomainSocketChannel.class : NioServerDomainSocketChannel.class;
  }

  /**
   * A listener over a socket systemd bound and passed in ({@link SocketActivation}): epoll only, which
   * can adopt a descriptor; NIO cannot.
   */
  public static ServerChannel inheritedServerChannel(SocketActivation.Listener l) {
    if (!EPOLL) {
      throw new IllegalStateException("socket activation needs Netty's epoll transport, which did not load here");
    }
    // Already listening: active from the start (the domain channel's int constructor would assume not).
    return l.unix() ? new EpollServerDomainSocketChannel(l.fd(), true) : new EpollServerSocketChannel(l.fd());
  }

  /** The address of the Unix socket at {@code path}, in the form this transport binds. */
  public static SocketAddress domainAddress(Path path) {
    return EPOLL ? new DomainSocketAddress(path.toFile()) : UnixDomainSocketAddress.of(path);
  }
}
