package io.vmd.bench.fault;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** The client side of a fixed-newstyle NBD handshake that goes straight to NBD_OPT_GO. */
public final class NbdHandshake {
  // The NBD wire constants the harness's own peers share (its load client and null-nbd).
  static final long NBDMAGIC = 0x4e42444d41474943L;
  static final long IHAVEOPT = 0x49484156454F5054L;
  static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;
  static final int REQUEST_MAGIC = 0x25609513;
  static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  static final int OPT_GO = 7;
  static final int REP_ACK = 1;
  static final int REP_INFO = 3;

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
}
