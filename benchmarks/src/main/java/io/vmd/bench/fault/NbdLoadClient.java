package io.vmd.bench.fault;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * A load-generating NBD client: fixed newstyle, NBD_OPT_GO, simple replies, a window of requests in
 * flight on one connection from one thread. Measures each request from send to reply.
 */
final class NbdLoadClient implements Driver {
  private static final long IHAVEOPT = 0x49484156454F5054L;
  private static final int REQUEST_MAGIC = 0x25609513;
  private static final int SIMPLE_REPLY_MAGIC = 0x67446698;

  private final Socket socket;
  private final DataInputStream in;
  private final DataOutputStream out;
  private final String target;

  NbdLoadClient(String host, int port, String export) throws IOException {
    this.target = "nbd://" + host + ":" + port + "/" + export;
    socket = new Socket(host, port);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 20));
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 20));
    if (in.readLong() != 0x4e42444d41474943L || in.readLong() != IHAVEOPT) {
      throw new IOException(target + ": not an NBD server");
    }
    int flags = in.readUnsignedShort();
    out.writeInt(flags & 3); // fixed newstyle, no zeroes
    byte[] name = export.getBytes(StandardCharsets.UTF_8);
    out.writeLong(IHAVEOPT);
    out.writeInt(7); // NBD_OPT_GO
    out.writeInt(4 + name.length + 2);
    out.writeInt(name.length);
    out.write(name);
    out.writeShort(0);
    out.flush();
    while (true) {
      in.readLong();
      in.readInt();
      int type = in.readInt();
      byte[] data = new byte[in.readInt()];
      in.readFully(data);
      if (type == 1) {
        return; // NBD_REP_ACK: transmission begins
      }
      if (type != 3) {
        throw new IOException(target + ": NBD_OPT_GO refused (" + new String(data, StandardCharsets.UTF_8) + ")");
      }
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
    long[] sentAt = new long[qd];
    boolean[] isRead = new boolean[qd];
    byte[] block = new byte[w.blockSize()];
    new SplittableRandom(1).nextBytes(block);
    SplittableRandom random = new SplittableRandom(42);
    long blocks = region / w.blockSize();
    long next = 0;
    long start = System.nanoTime();
    long deadline = start + Math.min(nanos, Long.MAX_VALUE / 4); // no overflow for "until done"
    long issuedBytes = 0;
    int inFlight = 0;
    boolean stop = false;
    int[] freeSlots = new int[qd];
    int free = qd;
    for (int i = 0; i < qd; i++) {
      freeSlots[i] = i;
    }
    while (true) {
      while (!stop && free > 0) {
        int slot = freeSlots[--free];
        long offset = (w.sequential() ? next++ % blocks : random.nextLong(blocks)) * w.blockSize();
        boolean read = random.nextInt(100) < w.readPercent();
        isRead[slot] = read;
        out.writeInt(REQUEST_MAGIC);
        out.writeShort(0);
        out.writeShort(read ? 0 : 1);
        out.writeLong(slot);
        out.writeLong(offset);
        out.writeInt(w.blockSize());
        if (!read) {
          out.write(block);
        }
        sentAt[slot] = System.nanoTime();
        inFlight++;
        issuedBytes += w.blockSize();
        stop = issuedBytes >= maxBytes;
      }
      out.flush();
      if (inFlight == 0) {
        break;
      }
      if (in.readInt() != SIMPLE_REPLY_MAGIC) {
        throw new IOException(target + ": bad reply magic");
      }
      int error = in.readInt();
      int slot = (int) in.readLong();
      if (error != 0) {
        throw new IOException(target + ": request failed with errno " + error);
      }
      if (isRead[slot]) {
        in.readFully(block);
      }
      long now = System.nanoTime();
      r.latencyNanos.recordValue(now - sentAt[slot]);
      r.operations++;
      r.bytes += w.blockSize();
      inFlight--;
      freeSlots[free++] = slot;
      if (now >= deadline) {
        stop = true;
      }
    }
    r.elapsedNanos = System.nanoTime() - start;
    return r;
  }

  @Override
  public void close() throws IOException {
    out.writeInt(REQUEST_MAGIC);
    out.writeShort(0);
    out.writeShort(2); // NBD_CMD_DISC
    out.writeLong(0);
    out.writeLong(0);
    out.writeInt(0);
    out.flush();
    socket.close();
  }
}
