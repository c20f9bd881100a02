package io.vmd.nbd;

import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.vmd.protocol.Pages;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;

/**
 * The bytes and requests one NBD connection may hold, and the reading it stops while over them.
 *
 * <p>Memory is budgeted in bytes, not requests: what a request will hold (its payload, or the reply a
 * READ will need) is charged to this connection and to the gateway's {@link GatewayBudget} when it is
 * admitted and released when its reply has left for the socket. A READ that does not fit waits here
 * (a few bytes of header) and the connection stops reading until half its budget is free, so a client
 * that never reads its replies holds at most its budget. Runs on the connection's event loop, but for
 * {@link #budgetFreed}.
 */
final class ConnectionBudget {
  /** Charged for a reply beside its data: its header and at most a 1 KiB error message. */
  static final int REPLY_COST = 2048;
  /** The most one request (or piece) asks of a budget before it may start. */
  static final long MAX_COST = NbdSession.PIECE + REPLY_COST;
  /** Stop reading requests above this many in flight, resume below half of it. */
  private static final int MAX_IN_FLIGHT = 512;

  /** The session whose requests this admits. */
  interface Session {
    /** A waiting request fits now: start it. */
    void admitted(NbdRequest r);

    /** A waiting request whose connection is gone. */
    void abandon(NbdRequest r);

    /** The long READ whose simple reply owns the output, or null. */
    NbdRequest outputOwner();

    boolean disconnecting();

    boolean closed();
  }

  private final GatewayBudget gateway;
  private final long limit;
  private final long resumeAt;
  private final Channel channel;
  private final EventLoop loop;
  private final Session session;
  /** Bytes this connection holds of its budget (and of the gateway's). */
  private long charged;
  /** Requests received and not yet answered (their replies not yet written), waiting ones included. */
  private int inFlight;
  /** Requests that did not fit the budgets when they came, in arrival order. */
  private final ArrayDeque<NbdRequest> waiting = new ArrayDeque<>();
  private boolean paused;
  private boolean awaitingBudget;

  ConnectionBudget(GatewayBudget gateway, Channel channel, Session session) {
    this.gateway = gateway;
    this.limit = gateway.perConnection();
    this.resumeAt = limit / 2;
    this.channel = channel;
    this.loop = channel.eventLoop();
    this.session = session;
  }

  String describe() {
    return "charged=" + charged + " inFlight=" + inFlight + " waiting=" + waiting.size() + " paused=" + paused;
  }

  /** What {@code r} (or the next piece of a long READ) will hold until its reply is written. */
  static long cost(NbdRequest r) {
    switch (r.type) {
      case NbdProtocol.CMD_READ:
        return r.span() + REPLY_COST;
      case NbdProtocol.CMD_BLOCK_STATUS:
        return REPLY_COST + NbdProtocol.EXTENT_SIZE * (long) NbdSession.maxExtents(r);
      default:
        return REPLY_COST;
    }
  }

  /** A request came: it counts against the in-flight limit until {@link #finished}. */
  void received() {
    inFlight++;
  }

  /** A request's reply has left, or it was abandoned. */
  void finished() {
    inFlight--;
  }

  int inFlight() {
    return inFlight;
  }

  /** Charges a request whose bytes are here already (a WRITE's payload): holding it back frees nothing. */
  void chargeNow(NbdRequest r, long cost) {
    r.charge = cost;
    charge(cost);
  }

  /** Charges {@code r} and returns true if it fits now and nothing waits before it; else it waits. */
  boolean admitOrQueue(NbdRequest r) {
    long cost = cost(r);
    if (waiting.isEmpty() && admits(r, cost)) {
      chargeNow(r, cost);
      return true;
    }
    waiting.add(r);
    return false;
  }

  /** A long READ whose piece has left waits for the budget of its next piece, before all others. */
  void queueFirst(NbdRequest r) {
    waiting.addFirst(r);
  }

  private boolean admits(NbdRequest r, long cost) {
    NbdRequest owner = session.outputOwner();
    if (owner != null) {
      // Only the long READ that owns the output goes on (past this connection's own budget if the
      // replies it holds back fill it: they are freed by its end).
      return r == owner && gateway.fits(cost);
    }
    return charged + cost <= limit && gateway.fits(cost);
  }

  void charge(long bytes) {
    charged += bytes;
    gateway.charge(bytes);
  }

  void release(long bytes) {
    if (bytes != 0) {
      charged -= bytes;
      gateway.release(bytes);
    }
  }

  /** Starts waiting requests that now fit, in order; drops them all once the connection is gone. */
  void pump() {
    while (!waiting.isEmpty()) {
      NbdRequest r = waiting.peek();
      if (session.closed()) {
        waiting.poll();
        session.abandon(r);
        continue;
      }
      long cost = cost(r);
      if (!admits(r, cost)) {
        break;
      }
      waiting.poll();
      chargeNow(r, cost);
      session.admitted(r);
    }
  }

  /** Forgets every waiting request (the connection is gone). */
  void abandonWaiting() {
    while (!waiting.isEmpty()) {
      session.abandon(waiting.poll());
    }
  }

  /** Stops reading while over a budget (or too many requests wait), resumes under half of it. */
  void updateReading() {
    if (session.closed()) {
      return;
    }
    boolean disconnecting = session.disconnecting();
    boolean stop = disconnecting || inFlight >= MAX_IN_FLIGHT || !waiting.isEmpty() || charged >= limit
        || gateway.spent();
    if (stop) {
      if (!paused) {
        paused = true;
        channel.config().setAutoRead(false);
        if (!disconnecting) {
          gateway.paused();
        }
      }
    } else if (paused && charged <= resumeAt && inFlight <= MAX_IN_FLIGHT / 2) {
      paused = false;
      channel.config().setAutoRead(true);
    }
    boolean gatewayBound = gateway.spent() || (!waiting.isEmpty() && !gateway.fits(cost(waiting.peek())));
    if (paused && !disconnecting && gatewayBound && !awaitingBudget) {
      awaitingBudget = true;
      gateway.await(this);
    }
  }

  /** The gateway's budget has room again (called from any thread). */
  void budgetFreed() {
    try {
      loop.execute(() -> {
        awaitingBudget = false;
        pump();
        updateReading();
      });
    } catch (RejectedExecutionException e) {
      // shutting down
    }
  }
}
