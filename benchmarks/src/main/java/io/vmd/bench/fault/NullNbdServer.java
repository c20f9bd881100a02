package io.vmd.bench.fault;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * The {@code null-nbd} yardstick: an NBD server that keeps nothing and answers every request at once
 * (reads return zeros, writes are dropped), one blocking thread per connection. It is not a device;
 * it measures what one loopback hop to a Java process costs a request on this host, which is the
 * least the gateway's hop to a server adds to nbdkit's numbers. Run as a process of its own:
 * {@code java -cp ... io.vmd.bench.fault.NullNbdServer PORT SIZE}.
 */
public final class NullNbdServer {
  private static final int OPT_EXPORT_NAME = 1;
  private static final int OPT_ABORT = 2;
  private static final int OPT_INFO = 6;
  private static final int REP_ERR_UNSUP = 0x80000001;
  private static final int FLAG_FIXED_NEWSTYLE = 1;
  private static final int FLAG_NO_ZEROES = 2;
  private static final short TRANSMISSION_FLAGS = 1 | 4 | 32; // has flags, send flush, send trim
  private static final int CMD_READ = 0;
  private static final int CMD_WRITE = 1;
  private static final int CMD_DISC = 2;
  private static final int EINVAL = 22;
  /** Longest request it takes: the largest the workloads send, with room. */
  private static final int MAX_LENGTH = 32 << 20;

  private final long size;

  private NullNbdServer(long size) {
    this.size = size;
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 2) {
      System.err.println("usage: NullNbdServer PORT SIZE_BYTES");
      System.exit(2);
    }
    NullNbdServer server = new NullNbdServer(Long.parseLong(args[1]));
    try (ServerSocket listener = new ServerSocket(Integer.parseInt(args[0]), 16, InetAddress.getLoopbackAddress())) {
      while (true) {
        Socket s = listener.accept();
        Thread t = new Thread(() -> server.serve(s), "null-nbd " + s.getRemoteSocketAddress());
        t.setDaemon(true);
        t.start();
      }
    }
  }

  private void serve(Socket s) {
    try (s) {
      s.setTcpNoDelay(true);
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 20));
      DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 20));
      if (negotiate(in, out)) {
        transmit(in, out);
      }
    } catch (EOFException gone) {
      // The client hung up.
    } catch (IOException e) {
      System.err.println("null-nbd: " + e);
    }
  }

  /** Fixed newstyle: answers EXPORT_NAME, INFO and GO for any name; every other option is unsupported. */
  private boolean negotiate(DataInputStream in, DataOutputStream out) throws IOException {
    out.writeLong(NbdHandshake.NBDMAGIC);
    out.writeLong(NbdHandshake.IHAVEOPT);
    out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    out.flush();
    int clientFlags = in.readInt();
    while (true) {
      if (in.readLong() != NbdHandshake.IHAVEOPT) {
        throw new IOException("bad option magic");
      }
      int option = in.readInt();
      int length = in.readInt();
      if (length < 0 || length > 65536) {
        throw new IOException("option of " + length + " bytes");
      }
      in.skipNBytes(length);
      switch (option) {
        case OPT_EXPORT_NAME -> {
          out.writeLong(size);
          out.writeShort(TRANSMISSION_FLAGS);
          if ((clientFlags & FLAG_NO_ZEROES) == 0) {
            out.write(new byte[124]);
          }
          out.flush();
          return true;
        }
        case OPT_INFO, NbdHandshake.OPT_GO -> {
          optionReply(out, option, NbdHandshake.REP_INFO, 12);
          out.writeShort(0); // NBD_INFO_EXPORT
          out.writeLong(size);
          out.writeShort(TRANSMISSION_FLAGS);
          optionReply(out, option, NbdHandshake.REP_ACK, 0);
          out.flush();
          if (option == NbdHandshake.OPT_GO) {
            return true;
          }
        }
        case OPT_ABORT -> {
          optionReply(out, option, NbdHandshake.REP_ACK, 0);
          out.flush();
          return false;
        }
        default -> {
          optionReply(out, option, REP_ERR_UNSUP, 0);
          out.flush();
        }
      }
    }
  }

  private static void optionReply(DataOutputStream out, int option, int type, int length) throws IOException {
    out.writeLong(NbdHandshake.OPTION_REPLY_MAGIC);
    out.writeInt(option);
    out.writeInt(type);
    out.writeInt(length);
  }

  private void transmit(DataInputStream in, DataOutputStream out) throws IOException {
    byte[] zeros = new byte[1 << 20];
    byte[] scratch = new byte[1 << 20];
    while (true) {
      if (in.readInt() != NbdHandshake.REQUEST_MAGIC) {
        throw new IOException("bad request magic");
      }
      in.readUnsignedShort(); // command flags
      int type = in.readUnsignedShort();
      long handle = in.readLong();
      long offset = in.readLong();
      long length = in.readInt() & 0xffffffffL;
      if (type == CMD_DISC) {
        out.flush();
        return;
      }
      boolean inRange = offset >= 0 && length <= MAX_LENGTH && offset + length <= size;
      if (type == CMD_WRITE) {
        if (length > MAX_LENGTH) {
          throw new IOException("write of " + length + " bytes");
        }
        // Read, not skipped: skipping reads through a small buffer, a syscall per few KiB.
        for (long left = length; left > 0; left -= scratch.length) {
          in.readFully(scratch, 0, (int) Math.min(left, scratch.length));
        }
      }
      out.writeInt(NbdHandshake.SIMPLE_REPLY_MAGIC);
      out.writeInt(inRange ? 0 : EINVAL);
      out.writeLong(handle);
      for (long left = type == CMD_READ && inRange ? length : 0; left > 0; left -= zeros.length) {
        out.write(zeros, 0, (int) Math.min(left, zeros.length));
      }
      // Replies of a pipelined burst leave together, as a server's would.
      if (in.available() == 0) {
        out.flush();
      }
    }
  }
}
