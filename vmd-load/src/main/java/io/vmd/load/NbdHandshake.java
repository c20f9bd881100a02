package io.vmd.load;

import static io.vmd.nbd.NbdProtocol.IHAVEOPT;
import static io.vmd.nbd.NbdProtocol.NBDMAGIC;
import static io.vmd.nbd.NbdProtocol.OPT_GO;
import static io.vmd.nbd.NbdProtocol.OPT_STRUCTURED_REPLY;
import static io.vmd.nbd.NbdProtocol.REP_ACK;
import static io.vmd.nbd.NbdProtocol.REP_INFO;

import io.vmd.nbd.NbdProtocol;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.LongUnaryOperator;

/**
 * The client side of the NBD protocol that the benchmarks' own peers speak: a fixed-newstyle
 * handshake that goes straight to NBD_OPT_GO (after NBD_OPT_STRUCTURED_REPLY when asked), then
 * requests with simple or structured replies. The wire constants come from the gateway's
 * {@link NbdProtocol}.
 */
public final class NbdHandshake {

  private NbdHandshake() {}

  /** Negotiates {@code export}; on return the connection is in the transmission phase. */
  public static void go(DataInputStream in, DataOutputStream out, String export, String target) throws IOException {
    go(in, out, export, target, false);
  }

  /**
   * Negotiates {@code export}, with structured replies first when {@code structured} (as QEMU and
   * libnbd do); on return the connection is in the transmission phase.
   */
  public static void go(DataInputStream in, DataOutputStream out, String export, String target, boolean structured)
      throws IOException {
    if (in.readLong() != NBDMAGIC || in.readLong() != IHAVEOPT) {
      throw new IOException(target + ": not an NBD server");
    }
    int flags = in.readUnsignedShort();
    out.writeInt(flags & 3); // fixed newstyle, no zeroes
    if (structured) {
      out.writeLong(IHAVEOPT);
      out.writeInt(OPT_STRUCTURED_REPLY);
      out.writeInt(0);
      out.flush();
      in.readLong();
      in.readInt();
      int type = in.readInt();
      in.skipNBytes(in.readInt());
      if (type != REP_ACK) {
        throw new IOException(target + ": NBD_OPT_STRUCTURED_REPLY refused");
      }
    }
    byte[] name = export.getBytes(StandardCharsets.UTF_8);
    out.writeLong(IHAVEOPT);
    out.writeInt(OPT_GO);
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
      if (type == REP_ACK) {
        return;
      }
      if (type != REP_INFO) {
        throw new IOException(target + ": NBD_OPT_GO refused (" + new String(data, StandardCharsets.UTF_8) + ")");
      }
    }
  }

  /** Writes one request header (not flushed); a WRITE's payload follows it. */
  public static void request(DataOutputStream out, int type, long handle, long offset, int length) throws IOException {
    out.writeInt(NbdProtocol.REQUEST_MAGIC);
    out.writeShort(0);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt(length);
  }

  /**
   * Reads one simple reply's header and returns its errno (0: success); a READ's data follows it.
   * {@code handle} receives the reply's handle when not null.
   */
  public static int simpleReply(DataInputStream in, long[] handle, String target) throws IOException {
    if (in.readInt() != NbdProtocol.SIMPLE_REPLY_MAGIC) {
      throw new IOException(target + ": bad NBD reply magic");
    }
    int error = in.readInt();
    long h = in.readLong();
    if (handle != null) {
      handle[0] = h;
    }
    return error;
  }

  /**
   * Reads structured reply chunks (or a simple reply) until one ends a request, and returns that
   * request's handle. A READ's data goes into {@code block} at its offset from
   * {@code offsetOf(handle)}; holes read as zeros. An error is an IOException.
   */
  public static long structuredReply(DataInputStream in, byte[] block, LongUnaryOperator offsetOf,
      String target) throws IOException {
    while (true) {
      int magic = in.readInt();
      if (magic == NbdProtocol.SIMPLE_REPLY_MAGIC) {
        // Allowed for every command but a successful READ, and what servers send after a write.
        int errno = in.readInt();
        long handle = in.readLong();
        if (errno != 0) {
          throw new IOException(target + ": request failed with errno " + errno);
        }
        return handle;
      }
      if (magic != NbdProtocol.STRUCTURED_REPLY_MAGIC) {
        throw new IOException(target + ": bad NBD reply magic");
      }
      int flags = in.readUnsignedShort();
      int type = in.readUnsignedShort();
      long handle = in.readLong();
      int length = in.readInt();
      switch (type) {
        case NbdProtocol.REPLY_TYPE_NONE -> in.skipNBytes(length);
        case NbdProtocol.REPLY_TYPE_OFFSET_DATA -> {
          int at = (int) (in.readLong() - offsetOf.applyAsLong(handle));
          in.readFully(block, at, length - 8);
        }
        case NbdProtocol.REPLY_TYPE_OFFSET_HOLE -> {
          int at = (int) (in.readLong() - offsetOf.applyAsLong(handle));
          Arrays.fill(block, at, at + in.readInt(), (byte) 0);
        }
        default -> {
          int errno = length >= 4 ? in.readInt() : -1;
          in.skipNBytes(Math.max(0, length - 4));
          throw new IOException(target + ": request failed with errno " + errno + " (reply type " + type + ")");
        }
      }
      if ((flags & NbdProtocol.REPLY_FLAG_DONE) != 0) {
        return handle;
      }
    }
  }
}
