package io.vmd.load;

import io.vmd.nbd.NbdProtocol;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.util.SplittableRandom;
import java.util.function.LongUnaryOperator;

/**
 * A load-generating NBD client: fixed newstyle, NBD_OPT_GO, simple replies (as the kernel's
 * nbd-client) or structured ones (as QEMU and libnbd), a window of requests in flight on one
 * connection from one thread. Measures each request from send to reply.
 */
public final class NbdLoadClient extends WindowedDriver {

  private final Socket socket;
  private final DataInputStream in;
  private final DataOutputStream out;
  private final String target;
  private final boolean structured;
  private boolean[] isRead;
  private long[] offsets;
  private final LongUnaryOperator offsetOfHandle = h -> offsets[(int) h];
  /** The handle of the reply being read. */
  private final long[] handle = new long[1];
  private byte[] block;

  public NbdLoadClient(String host, int port, String export) throws IOException {
    this(host, port, export, false);
  }

  /** With {@code structured}, negotiates structured replies first. */
  public NbdLoadClient(String host, int port, String export, boolean structured) throws IOException {
    this.target = "nbd://" + host + ":" + port + "/" + export;
    this.structured = structured;
    socket = new Socket(host, port);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 20));
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 20));
    NbdHandshake.go(in, out, export, target, structured);
  }

  @Override
  protected void begin(Workload w) {
    if (isRead == null || isRead.length < w.queueDepth()) {
      isRead = new boolean[w.queueDepth()];
      offsets = new long[w.queueDepth()];
    }
    if (block == null || block.length != w.blockSize()) {
      block = new byte[w.blockSize()];
      new SplittableRandom(1).nextBytes(block);
    }
  }

  @Override
  protected void issue(Workload w, int slot, long offset, boolean read) throws IOException {
    isRead[slot] = read;
    offsets[slot] = offset;
    NbdHandshake.request(out, read ? NbdProtocol.CMD_READ : NbdProtocol.CMD_WRITE, slot, offset, w.blockSize());
    if (!read) {
      out.write(block);
    }
  }

  @Override
  protected void flush() throws IOException {
    out.flush();
  }

  @Override
  protected int awaitOne(Workload w) throws IOException {
    if (structured) {
      return (int) NbdHandshake.structuredReply(in, block, offsetOfHandle, target);
    }
    int error = NbdHandshake.simpleReply(in, handle, target);
    int slot = (int) handle[0];
    if (error != 0) {
      throw new IOException(target + ": request failed with errno " + error);
    }
    if (isRead[slot]) {
      in.readFully(block);
    }
    return slot;
  }

  @Override
  public void close() throws IOException {
    NbdHandshake.request(out, NbdProtocol.CMD_DISC, 0, 0, 0);
    out.flush();
    socket.close();
  }
}
