package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.vmd.common.FlushBatch;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;

/**
 * Writes one connection's replies, one method per reply type, and keeps them in an order the client
 * can parse. Structured replies are chunks that may interleave; a simple reply is one header and its
 * data with nothing in between, so while a long READ writes its simple reply piece by piece it owns
 * the output: other replies are held back (reply and request, in order) and other long READs wait
 * with their first piece read until it is done. Runs on the connection's event loop.
 */
final class ReplyWriter {
  /** What the session hears back from its replies. */
  interface Owner {
    /** A long READ's piece (not its last) has left for the socket. */
    void pieceSent(NbdRequest r);

    /** A request that will not be answered: its connection is gone. */
    void abandon(NbdRequest r);

    boolean closed();
  }

  /** A reply held back behind a long simple reply, with the request it answers. */
  private record Held(ByteBuf reply, NbdRequest request) {}

  private final Channel channel;
  private final EventLoop loop;
  private final boolean structured;
  private final ExportMetrics metrics;
  private final Owner owner;
  /** The long READ whose simple reply is being written piece by piece, or null. */
  private NbdRequest outputOwner;
  private ArrayDeque<Held> held;
  /** Long READs whose first piece is read and waits for the output. */
  private ArrayDeque<NbdRequest> deferred;

  ReplyWriter(Channel channel, boolean structured, ExportMetrics metrics, Owner owner) {
    this.channel = channel;
    this.loop = channel.eventLoop();
    this.structured = structured;
    this.metrics = metrics;
    this.owner = owner;
  }

  boolean structured() {
    return structured;
  }

  /** The long READ that owns the output, or null. */
  NbdRequest outputOwner() {
    return outputOwner;
  }

  /** Success without data. */
  void ok(NbdRequest r) {
    send(r, structured && r.type == NbdProtocol.CMD_READ ? NbdReply.done(channel.alloc(), r.handleId)
        : NbdReply.simple(channel.alloc(), r.handleId, 0));
  }

  /** A failure: an ERROR chunk with the message, or a simple reply with the errno alone. */
  void error(NbdRequest r, int errno, String message) {
    send(r, structured ? NbdReply.error(channel.alloc(), r.handleId, errno, message)
        : NbdReply.simple(channel.alloc(), r.handleId, errno));
  }

  /** A whole READ's data in one reply. */
  void data(NbdRequest r, ByteBuf data) {
    ByteBuf header = structured
        ? NbdReply.offsetData(channel.alloc(), r.handleId, true, r.offset, data.readableBytes())
        : NbdReply.simple(channel.alloc(), r.handleId, 0);
    if (outputOwner != null) {
      // Behind a long simple reply: header and data wait together.
      send(r, channel.alloc().compositeDirectBuffer(2).addComponents(true, header, data));
      return;
    }
    // On the loop nothing can come between the two writes: no composite buffer needed.
    channel.write(header, channel.voidPromise());
    send(r, data);
  }

  /** One piece of a long READ, {@code n} bytes from {@code at}; the last piece answers the request. */
  void piece(NbdRequest r, ByteBuf data, long at, long n) {
    if (!structured && outputOwner != null && outputOwner != r) {
      // Another long simple reply is being written: this one's header and bytes may not come between
      // its pieces. The piece waits (its budget already held) until that reply is out.
      r.buffer = data;
      if (deferred == null) {
        deferred = new ArrayDeque<>();
      }
      deferred.add(r);
      return;
    }
    r.sent += n;
    boolean last = r.sent == r.length;
    ByteBuf header = null;
    if (structured) {
      header = NbdReply.offsetData(channel.alloc(), r.handleId, last, at, (int) n);
    } else if (at == r.offset) {
      // One simple reply: its header, then every piece's bytes, with nothing in between.
      header = NbdReply.simple(channel.alloc(), r.handleId, 0);
      outputOwner = r;
    }
    if (header != null) {
      channel.write(header, channel.voidPromise());
    }
    if (last) {
      send(r, data);
    } else {
      FlushBatch.writeAndFlush(channel, data, channel.newPromise().addListener(f -> owner.pieceSent(r)));
    }
  }

  /**
   * Writes a request's (last) reply; the request is finished, and its budget freed, when the reply
   * has left for the socket (the request is the write's listener). Completions on other threads come
   * to the loop first.
   */
  void send(NbdRequest r, ByteBuf reply) {
    if (!loop.inEventLoop()) {
      try {
        loop.execute(() -> send(r, reply));
      } catch (RejectedExecutionException e) {
        reply.release();
      }
      return;
    }
    metrics.latency(r.type, r.startNanos);
    if (outputOwner != null && outputOwner != r) {
      if (held == null) {
        held = new ArrayDeque<>();
      }
      held.add(new Held(reply, r));
      return;
    }
    // A failed write surfaces as exceptionCaught and closes the connection; the promise still completes.
    FlushBatch.writeAndFlush(channel, reply, channel.newPromise().addListener(r));
    if (outputOwner == r) {
      unlock();
    }
  }

  /**
   * The long simple reply is written (or abandoned): the replies that waited behind it go out, then
   * the next long READ whose first piece waits takes the output.
   */
  void unlock() {
    outputOwner = null;
    ArrayDeque<Held> h = held;
    held = null;
    while (h != null && !h.isEmpty()) {
      Held next = h.poll();
      FlushBatch.writeAndFlush(channel, next.reply(), channel.newPromise().addListener(next.request()));
    }
    NbdRequest next = deferred == null ? null : deferred.poll();
    if (next != null) {
      ByteBuf data = next.buffer;
      next.buffer = null;
      if (owner.closed()) {
        data.release();
        owner.abandon(next);
      } else {
        piece(next, data, next.at(), next.span());
      }
    }
  }

  /** The connection is gone: long READs waiting for the output are dropped with their data. */
  void closed() {
    if (outputOwner != null) {
      unlock();
    }
    while (deferred != null && !deferred.isEmpty()) {
      NbdRequest r = deferred.poll();
      if (r.buffer != null) {
        r.buffer.release();
        r.buffer = null;
      }
      owner.abandon(r);
    }
  }
}
