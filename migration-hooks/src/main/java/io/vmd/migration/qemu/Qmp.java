package io.vmd.migration.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client of QEMU's machine protocol over its Unix socket. Commands carry ids and complete their own
 * future when QEMU answers ({@code return} or {@code error}); events are kept, with QEMU's own
 * timestamps, for whoever waits for them. One reader thread per connection; sending is synchronized.
 */
public final class Qmp implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Qmp.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** An asynchronous event as QEMU sent it: its name, data and QEMU's clock at the time (µs since the epoch). */
  public record Event(String name, JsonNode data, long timestampMicros) {}

  private final SocketChannel socket;
  /** Held while writing a command (the reader thread reads at the same time, on its own lock). */
  private final Object sending = new Object();
  private final Map<String, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
  private final List<Event> events = new ArrayList<>();
  private final AtomicLong ids = new AtomicLong();
  private final Thread reader;
  private final String name;
  private final JsonNode greeting;
  private volatile IOException broken;

  private Qmp(SocketChannel socket, String name) throws IOException {
    this.socket = socket;
    this.name = name;
    // Not Channels.newInputStream/newOutputStream: both take the channel's blocking lock, so a write
    // would wait for the reader thread's read to return.
    BufferedReader in = new BufferedReader(new InputStreamReader(new InputStream() {
      private final ByteBuffer one = ByteBuffer.allocate(1);

      @Override
      public int read() throws IOException {
        one.clear();
        int n = socket.read(one);
        return n < 0 ? -1 : one.get(0) & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        return len == 0 ? 0 : socket.read(ByteBuffer.wrap(b, off, len));
      }
    }, StandardCharsets.UTF_8));
    String first = in.readLine();
    if (first == null) {
      throw new IOException("QEMU " + name + " closed its QMP socket before greeting");
    }
    greeting = JSON.readTree(first);
    if (!greeting.has("QMP")) {
      throw new IOException("QEMU " + name + " did not greet with QMP: " + first);
    }
    reader = new Thread(() -> read(in), "qmp-" + name);
    reader.setDaemon(true);
    reader.start();
  }

  /**
   * Connects to the QMP socket at {@code path}, waiting up to {@code wait} for QEMU to create it, and
   * leaves capabilities negotiation mode.
   */
  public static Qmp connect(Path path, String name, Duration wait) throws IOException {
    long deadline = System.nanoTime() + wait.toNanos();
    while (true) {
      SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        ch.connect(UnixDomainSocketAddress.of(path));
        Qmp q = new Qmp(ch, name);
        try {
          q.call("qmp_capabilities", null, Duration.ofSeconds(10));
        } catch (QmpException e) {
          q.close();
          throw new IOException("QEMU " + name + " refused QMP capabilities negotiation: " + e.getMessage(), e);
        }
        return q;
      } catch (IOException e) {
        ch.close();
        if (System.nanoTime() > deadline) {
          throw new IOException("cannot reach QEMU " + name + " at " + path + ": " + e.getMessage(), e);
        }
        try {
          Thread.sleep(50);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while waiting for QEMU " + name, ie);
        }
      }
    }
  }

  public JsonNode greeting() {
    return greeting;
  }

  /** Sends {@code command} with {@code arguments} (or none); the future completes with QEMU's {@code return}. */
  public CompletableFuture<JsonNode> execute(String command, Map<String, ?> arguments) {
    String id = name + "-" + ids.incrementAndGet();
    CompletableFuture<JsonNode> f = new CompletableFuture<>();
    IOException b = broken;
    if (b != null) {
      f.completeExceptionally(new QmpException(command, "connection to QEMU " + name + " lost: " + b.getMessage()));
      return f;
    }
    ObjectNode msg = JSON.createObjectNode().put("execute", command).put("id", id);
    if (arguments != null && !arguments.isEmpty()) {
      msg.set("arguments", JSON.valueToTree(arguments));
    }
    pending.put(id, f);
    try {
      ByteBuffer line = ByteBuffer.wrap((JSON.writeValueAsString(msg) + "\n").getBytes(StandardCharsets.UTF_8));
      synchronized (sending) {
        while (line.hasRemaining()) {
          socket.write(line);
        }
      }
    } catch (IOException e) {
      pending.remove(id);
      f.completeExceptionally(new QmpException(command, "cannot send to QEMU " + name + ": " + e.getMessage()));
    }
    return f;
  }

  /** {@link #execute} and wait at most {@code timeout}; QEMU's refusal comes out as a {@link QmpException}. */
  public JsonNode call(String command, Map<String, ?> arguments, Duration timeout) throws QmpException {
    try {
      return execute(command, arguments).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof QmpException q ? q : new QmpException(command, e.getCause().toString());
    } catch (TimeoutException e) {
      throw new QmpException(command, "QEMU " + name + " did not answer within " + timeout.toMillis() + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new QmpException(command, "interrupted");
    }
  }

  /** The first event named {@code event} (seen already or still to come) that {@code which} accepts. */
  public Event awaitEvent(String event, Predicate<Event> which, Duration timeout) throws QmpException {
    Event e = nextEvent(event, 0, which, timeout);
    if (e == null) {
      throw new QmpException(event, "no " + event + " event from QEMU " + name + " within "
          + timeout.toMillis() + " ms" + (broken != null ? " (connection lost)" : ""));
    }
    return e;
  }

  /**
   * The first event named {@code event} at or after position {@code from} of {@link #events()} (seen
   * already or still to come) that {@code which} accepts; null when none came within {@code timeout}
   * (or the connection is lost).
   */
  public Event nextEvent(String event, int from, Predicate<Event> which, Duration timeout) throws QmpException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (events) {
      while (true) {
        for (int i = from; i < events.size(); i++) {
          Event e = events.get(i);
          if (e.name().equals(event) && which.test(e)) {
            return e;
          }
        }
        long left = deadline - System.nanoTime();
        if (left <= 0 || broken != null) {
          return null;
        }
        try {
          events.wait(Math.max(1, left / 1_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new QmpException(event, "interrupted");
        }
      }
    }
  }

  /** Every event seen so far, in order. */
  public List<Event> events() {
    synchronized (events) {
      return List.copyOf(events);
    }
  }

  private void read(BufferedReader in) {
    try {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        if (line.isBlank()) {
          continue;
        }
        JsonNode m = JSON.readTree(line);
        if (m.has("event")) {
          JsonNode ts = m.path("timestamp");
          Event e = new Event(m.get("event").asText(), m.path("data"),
              ts.path("seconds").asLong() * 1_000_000 + ts.path("microseconds").asLong());
          synchronized (events) {
            events.add(e);
            events.notifyAll();
          }
          continue;
        }
        CompletableFuture<JsonNode> f = m.has("id") ? pending.remove(m.get("id").asText()) : null;
        if (f == null) {
          LOG.debug("QEMU {}: unmatched message {}", name, line);
        } else if (m.has("error")) {
          JsonNode err = m.get("error");
          f.completeExceptionally(new QmpException(m.get("id").asText(), err.path("class").asText() + ": "
              + err.path("desc").asText()));
        } else {
          f.complete(m.path("return"));
        }
      }
      broken = new IOException("QEMU " + name + " closed its QMP socket");
    } catch (IOException e) {
      broken = e;
    }
    for (CompletableFuture<JsonNode> f : pending.values()) {
      f.completeExceptionally(new QmpException("?", "connection to QEMU " + name + " lost: " + broken.getMessage()));
    }
    pending.clear();
    synchronized (events) {
      events.notifyAll();
    }
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException e) {
      // closing anyway
    }
  }
}
