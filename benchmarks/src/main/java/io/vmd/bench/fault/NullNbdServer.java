package io.vmd.bench.fault;

import static io.vmd.nbd.NbdProtocol.CMD_DISC;
import static io.vmd.nbd.NbdProtocol.CMD_READ;
import static io.vmd.nbd.NbdProtocol.CMD_WRITE;
import static io.vmd.nbd.NbdProtocol.EINVAL;
import static io.vmd.nbd.NbdProtocol.FLAG_FIXED_NEWSTYLE;
import static io.vmd.nbd.NbdProtocol.FLAG_HAS_FLAGS;
import static io.vmd.nbd.NbdProtocol.FLAG_NO_ZEROES;
import static io.vmd.nbd.NbdProtocol.FLAG_SEND_FLUSH;
import static io.vmd.nbd.NbdProtocol.FLAG_SEND_TRIM;
import static io.vmd.nbd.NbdProtocol.IHAVEOPT;
import static io.vmd.nbd.NbdProtocol.INFO_EXPORT;
import static io.vmd.nbd.NbdProtocol.NBDMAGIC;
import static io.vmd.nbd.NbdProtocol.OPTION_REPLY_MAGIC;
import static io.vmd.nbd.NbdProtocol.OPT_ABORT;
import static io.vmd.nbd.NbdProtocol.OPT_EXPORT_NAME;
import static io.vmd.nbd.NbdProtocol.OPT_GO;
import static io.vmd.nbd.NbdProtocol.OPT_INFO;
import static io.vmd.nbd.NbdProtocol.REP_ACK;
import static io.vmd.nbd.NbdProtocol.REP_ERR_UNSUP;
import static io.vmd.nbd.NbdProtocol.REP_INFO;
import static io.vmd.nbd.NbdProtocol.REQUEST_MAGIC;
import static io.vmd.nbd.NbdProtocol.SIMPLE_REPLY_MAGIC;

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
 * {@code java -cp ... NullNbdServer PORT SIZE}.
 */
public final class NullNbdServer {
  private static final int TRANSMISSION_FLAGS = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_TRIM;
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
    out.writeLong(NBDMAGIC);
    out.writeLong(IHAVEOPT);
    out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    out.flush();
    int clientFlags = in.readInt();
    while (true) {
      if (in.readLong() != IHAVEOPT) {
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
        case OPT_INFO, OPT_GO -> {
          optionReply(out, option, REP_INFO, 12);
          out.writeShort(INFO_EXPORT);
          out.writeLong(size);
          out.writeShort(TRANSMISSION_FLAGS);
          optionReply(out, option, REP_ACK, 0);
          out.flush();
          if (option == OPT_GO) {
            return true;
          }
        }
        case OPT_ABORT -> {
          optionReply(out, option, REP_ACK, 0);
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
    out.writeLong(OPTION_REPLY_MAGIC);
    out.writeInt(option);
    out.writeInt(type);
    out.writeInt(length);
  }

  private void transmit(DataInputStream in, DataOutputStream out) throws IOException {
    byte[] zeros = new byte[1 << 20];
    byte[] scratch = new byte[1 << 20];
    while (true) {
      if (in.readInt() != REQUEST_MAGIC) {
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
      out.writeInt(SIMPLE_REPLY_MAGIC);
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
