package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vmd.protocol.Availability;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Control requests to single servers, off the page data path: one-reply calls built as
 * {@code to(server, op).namespace(id, epoch).pages(first, count).send(parse)}, streamed LISTs, and the
 * catch-up that makes servers follow the control plane at once.
 */
final class ServerCalls {
  private static final Logger LOG = LoggerFactory.getLogger(ServerCalls.class);

  private final Membership membership;

  ServerCalls(Membership membership) {
    this.membership = membership;
  }

  /** A request of {@code op} to server {@code server}, to be completed and sent. */
  Request to(int server, byte op) {
    return new Request(server, op);
  }

  /** One control request: namespace, pages and flags default to none. */
  final class Request {
    private final int server;
    private final byte op;
    private int flags;
    private int namespace;
    private long epoch;
    private long firstPage;
    private int count;
    private Consumer<ByteBuf> body;

    private Request(int server, byte op) {
      this.server = server;
      this.op = op;
    }

    Request namespace(int id, long epoch) {
      this.namespace = id;
      this.epoch = epoch;
      return this;
    }

    Request flags(int flags) {
      this.flags = flags;
      return this;
    }

    /** About pages [first, first + count). */
    Request pages(long first, int count) {
      this.firstPage = first;
      this.count = count;
      return this;
    }

    Request body(Consumer<ByteBuf> body) {
      this.body = body;
      return this;
    }

    /** Sends it; the future has the parsed reply, or the server's error as a {@link VmdException}. */
    <T> CompletableFuture<T> send(Function<ByteBuf, T> parse) {
      CompletableFuture<T> result = new CompletableFuture<>();
      if (membership.server(server) == null) {
        result.completeExceptionally(new VmdException(ErrorCode.UNAVAILABLE, "no server with slot " + server));
        return result;
      }
      ServerConnection conn = membership.connection(server);
      long id = conn.nextId();
      ByteBuf frame = Codec.frame(ByteBufAllocator.DEFAULT, op, flags, 0, id, namespace, epoch, firstPage, count, body);
      conn.send(id, frame, new Pending() {
        @Override
        void onReply(ByteBuf f) {
          if (Frame.status(f) != 0) {
            result.completeExceptionally(error(f, server));
            return;
          }
          try {
            result.complete(parse.apply(f));
          } catch (RuntimeException e) {
            result.completeExceptionally(new VmdException(ErrorCode.BAD_REQUEST,
                "unreadable " + Op.name(op) + " reply from " + membership.describe(server) + ": " + e.getMessage()));
          }
        }

        @Override
        void onFailure(VmdException e) {
          result.completeExceptionally(e);
        }
      });
      return result;
    }
  }

  /** A server's error reply as an exception naming the server. */
  VmdException error(ByteBuf f, int server) {
    return new VmdException(ErrorCode.of(Frame.status(f)),
        "server " + membership.describe(server) + ": " + Codec.errorMessage(f));
  }

  /** The server's memory and pages, asked now rather than waiting for its next push. */
  CompletableFuture<Availability> availability(int server) {
    return to(server, Op.AVAILABILITY).send(f -> Codec.readAvailability(payload(f)));
  }

  /** A reply's payload, as a view. */
  static ByteBuf payload(ByteBuf f) {
    return Frame.skipHeader(f.duplicate());
  }

  /** Receives the entries of a LIST. */
  @FunctionalInterface
  interface ListSink {
    void entry(int server, long page, long stamp);
  }

  /** Makes the server catch up with the control plane on the namespace, then streams what it holds. */
  CompletableFuture<Void> catchUpAndList(int server, NamespaceRecord ns, ListSink sink) {
    return to(server, Op.NS_ATTACH).namespace(ns.id(), ns.epoch()).send(f -> (Void) null)
        .thenCompose(v -> list(server, ns, sink));
  }

  /** Streams the pages {@code server} holds of the namespace, with their stamps, into {@code sink}. */
  CompletableFuture<Void> list(int server, NamespaceRecord ns, ListSink sink) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    ServerConnection conn = membership.connection(server);
    long id = conn.nextId();
    ByteBuf frame = Codec.frame(ByteBufAllocator.DEFAULT, Op.LIST, 0, 0, id, ns.id(), 0, 0, 0, null);
    conn.send(id, frame, new Pending() {
      @Override
      boolean done(ByteBuf f) {
        return !Frame.hasMore(f);
      }

      @Override
      void onReply(ByteBuf f) {
        if (Frame.status(f) != 0) {
          done.completeExceptionally(error(f, server));
          return;
        }
        int n = Frame.pageCount(f);
        int at = Frame.payloadIndex(f);
        for (int i = 0; i < n; i++, at += Frame.LIST_ENTRY) {
          sink.entry(server, f.getLong(at), f.getLong(at + 8));
        }
        if (!Frame.hasMore(f)) {
          done.complete(null);
        }
      }

      @Override
      void onFailure(VmdException e) {
        done.completeExceptionally(e);
      }
    });
    return done;
  }

  /**
   * Makes each live server of {@code servers} catch up with the control plane on namespace {@code id}
   * now (NS_ATTACH), waiting for each at most {@code timeoutMillis}: after a create, so a first write
   * does not meet a server that has not heard of it; after a hand-off, so the earlier writer is refused.
   */
  void catchUp(Iterable<ServerState> servers, int id, long epoch, long timeoutMillis) {
    List<CompletableFuture<Long>> asks = new ArrayList<>();
    for (ServerState s : servers) {
      if (s != null && s.up()) {
        asks.add(to(s.index(), Op.NS_ATTACH).namespace(id, epoch).send(Frame::epoch));
      }
    }
    for (CompletableFuture<Long> a : asks) {
      try {
        VmdClient.await(a, timeoutMillis);
      } catch (VmdException e) {
        LOG.warn("{}", e.getMessage());
      }
    }
  }
}
