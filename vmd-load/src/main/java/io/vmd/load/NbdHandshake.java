package io.vmd.load;

import static io.vmd.nbd.NbdProtocol.IHAVEOPT;
import static io.vmd.nbd.NbdProtocol.NBDMAGIC;
import static io.vmd.nbd.NbdProtocol.OPT_GO;
import static io.vmd.nbd.NbdProtocol.REP_ACK;
import static io.vmd.nbd.NbdProtocol.REP_INFO;

import io.vmd.nbd.NbdProtocol;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The client side of the NBD protocol that the benchmarks' own peers speak: a fixed-newstyle
 * handshake that goes straight to NBD_OPT_GO, then requests with simple replies. The wire constants
 * come from the gateway's {@link NbdProtocol}.
 */
public final class NbdHandshake {

  private NbdHandshake() {}

  /** Negotiates {@code export}; on return the connection is in the transmission phase. */
  public static void go(DataInputStream in, DataOutputStream out, String export, String target) throws IOException {
    if (in.readLong() != NBDMAGIC || in.readLong() != IHAVEOPT) {
      throw new IOException(target + ": not an NBD server");
    }
    int flags = in.readUnsignedShort();
    out.writeInt(flags & 3); // fixed newstyle, no zeroes
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
}
