package io.vmd.bench.fault;

import io.vmd.load.WindowedDriver;
import io.vmd.load.Workload;
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
final class RedisDriver extends WindowedDriver {
  private static final int PAGE = 4096;
  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;
  private final byte[] page = new byte[PAGE];
  private int[] order;
  private int head;
  private int tail;

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
  protected void begin(Workload w) {
    order = new int[w.queueDepth()];
    head = 0;
    tail = 0;
  }

  @Override
  protected void issue(Workload w, int slot, long offset, boolean read) throws IOException {
    int perBlock = w.blockSize() / PAGE;
    long first = offset / PAGE;
    for (int p = 0; p < perBlock; p++) {
      command(read, first + p);
    }
    order[tail] = slot;
    tail = (tail + 1) % order.length;
  }

  @Override
  protected void flush() throws IOException {
    out.flush();
  }

  /** Redis answers in order: the oldest request in flight finishes first. */
  @Override
  protected int awaitOne(Workload w) throws IOException {
    for (int p = 0; p < w.blockSize() / PAGE; p++) {
      reply();
    }
    int slot = order[head];
    head = (head + 1) % order.length;
    return slot;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
