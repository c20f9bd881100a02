package io.vmd.bench.fault;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * Redis as the page store a user might build instead: one key per 4 KiB page, GET for a page-in and
 * SET for a page-out, pipelined up to the queue depth. A 1 MiB block is 256 page commands sent together.
 */
final class RedisDriver implements Driver {
  private static final int PAGE = 4096;
  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;
  private final byte[] page = new byte[PAGE];

  RedisDriver(String host, int port) throws IOException {
    socket = new Socket(host, port);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 20));
    out = new BufferedOutputStream(socket.getOutputStream(), 1 << 20);
    new SplittableRandom(1).nextBytes(page);
  }

  private void command(boolean get, long pageIndex) throws IOException {
    byte[] key = ("page:" + pageIndex).getBytes(StandardCharsets.US_ASCII);
    if (get) {
      out.write(("*2\r\n$3\r\nGET\r\n$" + key.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
      out.write(key);
      out.write('\r');
      out.write('\n');
    } else {
      out.write(("*3\r\n$3\r\nSET\r\n$" + key.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
      out.write(key);
      out.write(("\r\n$" + PAGE + "\r\n").getBytes(StandardCharsets.US_ASCII));
      out.write(page);
      out.write('\r');
      out.write('\n');
    }
  }

  private String line() throws IOException {
    StringBuilder sb = new StringBuilder();
    for (int c = in.read(); c != '\r'; c = in.read()) {
      if (c < 0) {
        throw new IOException("redis closed the connection");
      }
      sb.append((char) c);
    }
    in.read();
    return sb.toString();
  }

  private void reply() throws IOException {
    String l = line();
    switch (l.charAt(0)) {
      case '+':
        return;
      case '$': {
        int n = Integer.parseInt(l.substring(1));
        if (n >= 0) {
          in.readFully(page, 0, Math.min(n, PAGE));
          in.skipNBytes(Math.max(0, n - PAGE) + 2);
        }
        return;
      }
      default:
        throw new IOException("redis: " + l);
    }
  }

  @Override
  public void fill(long bytes) throws Exception {
    run(new Workload("fill", 1 << 20, 8, 0, true), bytes, Long.MAX_VALUE, bytes);
  }

  @Override
  public Result run(Workload w, long region, long nanos) throws Exception {
    return run(w, region, nanos, Long.MAX_VALUE);
  }

  private Result run(Workload w, long region, long nanos, long maxBytes) throws IOException {
    Result r = new Result();
    int qd = w.queueDepth();
    int perBlock = w.blockSize() / PAGE;
    long[] sentAt = new long[qd];
    SplittableRandom random = new SplittableRandom(42);
    long blocks = region / w.blockSize();
    long next = 0;
    long issued = 0;
    long start = System.nanoTime();
    long deadline = start + Math.min(nanos, Long.MAX_VALUE / 4); // no overflow for "until done"
    // Redis answers in order, so the in-flight blocks form a ring.
    int head = 0;
    int tail = 0;
    int inFlight = 0;
    boolean stop = false;
    while (true) {
      while (!stop && inFlight < qd) {
        long block = w.sequential() ? next++ % blocks : random.nextLong(blocks);
        boolean get = random.nextInt(100) < w.readPercent();
        for (int p = 0; p < perBlock; p++) {
          command(get, block * perBlock + p);
        }
        sentAt[tail] = System.nanoTime();
        tail = (tail + 1) % qd;
        inFlight++;
        issued += w.blockSize();
        stop = issued >= maxBytes;
      }
      out.flush();
      if (inFlight == 0) {
        break;
      }
      for (int p = 0; p < perBlock; p++) {
        reply();
      }
      long now = System.nanoTime();
      r.latencyNanos.recordValue(now - sentAt[head]);
      head = (head + 1) % qd;
      inFlight--;
      r.operations++;
      r.bytes += w.blockSize();
      if (now >= deadline) {
        stop = true;
      }
    }
    r.elapsedNanos = System.nanoTime() - start;
    return r;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
