package io.vmd.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.EventLoop;
import io.netty.handler.ssl.SslHandler;
import io.vmd.common.FlushBatch;
import io.vmd.common.Slices;
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
  /**
   * Requests whose last reply is written but not yet known to have left, oldest first. They finish
   * (their budget freed) in order: at once when a flush leaves nothing unsent, else when the barrier
   * written after them completes. A promise per reply would be most of what a 4 KiB request allocates.
   */
  private final ArrayDeque<NbdRequest> unconfirmed = new ArrayDeque<>();
  /** Replies written since the last flush that left nothing unsent or wrote a barrier. */
  private int sinceBarrier;
  /** How many requests each barrier in flight covers, oldest first (a ring). */
  private int[] barriers = new int[8];
  private int firstBarrier;
  private int barrierCount;
  private final Runnable afterFlush = this::afterFlush;
  private final ChannelFutureListener barrierDone = f -> barrierDone();
  /**
   * No TLS: what the flush leaves unsent is in the channel's outbound buffer. (TLS could hold writes
   * of its own, so there every flush writes a barrier.)
   */
  private final boolean plain;

  ReplyWriter(Channel channel, boolean structured, ExportMetrics metrics, Owner owner) {
    this.channel = channel;
    this.loop = channel.eventLoop();
    this.structured = structured;
    this.metrics = metrics;
    this.owner = owner;
    this.plain = channel.pipeline().get(SslHandler.class) == null;
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
    // A failed write surfaces as exceptionCaught and closes the connection; the barrier still completes.
    written(r, reply);
    if (outputOwner == r) {
      unlock();
    }
  }

  /** Writes {@code r}'s last reply; {@code r} finishes once it is known to have left. */
  private void written(NbdRequest r, ByteBuf reply) {
    unconfirmed.add(r);
    sinceBarrier++;
    // A READ's page runs go out as messages of their own (TLS encrypts the composite as it is).
    FlushBatch.writeThenFlush(channel, plain ? Slices.writeAllButLastPart(channel, reply) : reply, afterFlush);
  }

  /**
   * After a flush: if nothing is left unsent, every reply written so far has left; else an empty write
   * whose promise completes once the replies before it have (writes complete in order).
   */
  private void afterFlush() {
    if (sinceBarrier == 0) {
      return;
    }
    ChannelOutboundBuffer out = channel.unsafe().outboundBuffer();
    if (plain && barrierCount == 0 && out != null && out.totalPendingWriteBytes() == 0) {
      int n = sinceBarrier;
      sinceBarrier = 0;
      finish(n);
      return;
    }
    if (barrierCount == barriers.length) {
      int[] grown = new int[barriers.length * 2];
      for (int i = 0; i < barrierCount; i++) {
        grown[i] = barriers[(firstBarrier + i) % barriers.length];
      }
      barriers = grown;
      firstBarrier = 0;
    }
    barriers[(firstBarrier + barrierCount++) % barriers.length] = sinceBarrier;
    sinceBarrier = 0;
    // A closed channel fails the promise at once: the requests still finish.
    channel.writeAndFlush(Unpooled.EMPTY_BUFFER, channel.newPromise().addListener(barrierDone));
  }

  /** The oldest barrier completed: its requests are done. */
  private void barrierDone() {
    int n = barriers[firstBarrier];
    firstBarrier = (firstBarrier + 1) % barriers.length;
    barrierCount--;
    finish(n);
  }

  /**
   * Finishes the {@code n} oldest unconfirmed requests. Finishing frees budget, which may start and
   * answer other requests: their writes wait in a batch until the loop is done, so that no flush (and
   * no nested finish) runs in between.
   */
  private void finish(int n) {
    FlushBatch batch = FlushBatch.current();
    batch.open();
    try {
      for (int i = 0; i < n; i++) {
        unconfirmed.poll().sent();
      }
    } finally {
      batch.close();
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
      written(next.request(), next.reply());
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
