package io.vmd.nbd;

import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A deliberately small blocking NBD client for protocol-edge tests (malformed input, error replies,
 * deep pipelines). The interop tests use real clients; this one exists to send what they never would.
 */
final class RawNbdClient implements AutoCloseable {
  final Socket socket;
  final DataInputStream in;
  final DataOutputStream out;
  boolean structured;

  record OptionReply(int option, int type, byte[] data) {
    String text() {
      return new String(data, StandardCharsets.UTF_8);
    }
  }

  /** A transmission reply: errno 0 on success; data of a READ. */
  record Reply(long handle, int error, byte[] data, String message) {}

  RawNbdClient(String host, int port) throws IOException {
    socket = new Socket(host, port);
    socket.setSoTimeout(20_000);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(socket.getInputStream());
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
    long magic = in.readLong();
    long opt = in.readLong();
    int flags = in.readUnsignedShort();
    if (magic != Nbd.NBDMAGIC || opt != Nbd.IHAVEOPT || (flags & Nbd.FLAG_FIXED_NEWSTYLE) == 0) {
      throw new IOException("not a fixed newstyle server");
    }
    out.writeInt(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
    out.flush();
  }

  void sendOption(int option, byte[] data) throws IOException {
    out.writeLong(Nbd.IHAVEOPT);
    out.writeInt(option);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  OptionReply readOptionReply() throws IOException {
    long magic = in.readLong();
    if (magic != Nbd.OPTION_REPLY_MAGIC) {
      throw new IOException("bad option reply magic");
    }
    int option = in.readInt();
    int type = in.readInt();
    byte[] data = new byte[in.readInt()];
    in.readFully(data);
    return new OptionReply(option, type, data);
  }

  static byte[] goData(String name) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 + n.length + 2);
    b.putInt(n.length).put(n).putShort((short) 0);
    return b.array();
  }

  /** The export's transmission flags, as the last GO told them. */
  int transmissionFlags;

  /** NBD_OPT_GO; returns the export size. */
  long go(String name) throws IOException {
    sendOption(Nbd.OPT_GO, goData(name));
    long size = -1;
    while (true) {
      OptionReply r = readOptionReply();
      if (r.type() == Nbd.REP_ACK) {
        return size;
      }
      if (r.type() != Nbd.REP_INFO) {
        throw new IOException("GO refused: type " + Integer.toHexString(r.type()) + " " + r.text());
      }
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(r.data());
      if (b.getShort() == Nbd.INFO_EXPORT) {
        size = b.getLong();
        transmissionFlags = b.getShort() & 0xffff;
      }
    }
  }

  /** NBD_OPT_EXPORT_NAME: the old way in, with no block sizes negotiated; returns the export size. */
  long exportName(String name) throws IOException {
    sendOption(Nbd.OPT_EXPORT_NAME, name.getBytes(StandardCharsets.UTF_8));
    long size = in.readLong();
    in.readUnsignedShort();
    return size;
  }

  void structuredReplies() throws IOException {
    sendOption(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
    if (readOptionReply().type() != Nbd.REP_ACK) {
      throw new IOException("no structured replies");
    }
    structured = true;
  }

  void request(int type, int flags, long handle, long offset, long length, byte[] data) throws IOException {
    out.writeInt(Nbd.REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt((int) length);
    if (data != null) {
      out.write(data);
    }
  }

  void flush() throws IOException {
    out.flush();
  }

  /** Reads one reply; {@code readLength} is the data length expected for a simple READ reply. */
  Reply reply(int readLength) throws IOException {
    int magic = in.readInt();
    if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
      int error = in.readInt();
      long handle = in.readLong();
      byte[] data = null;
      if (error == 0 && readLength > 0) {
        data = new byte[readLength];
        in.readFully(data);
      }
      return new Reply(handle, error, data, null);
    }
    // Structured: chunks until one says DONE; OFFSET_DATA chunks are joined in offset order.
    java.io.ByteArrayOutputStream data = null;
    long firstOffset = -1;
    long handle = -1;
    while (true) {
      if (magic != Nbd.STRUCTURED_REPLY_MAGIC) {
        throw new IOException(String.format("bad reply magic 0x%08x", magic));
      }
      int flags = in.readUnsignedShort();
      int type = in.readUnsignedShort();
      long h = in.readLong();
      if (handle != -1 && h != handle) {
        throw new IOException("chunks of two replies interleaved (" + handle + ", " + h + ")");
      }
      handle = h;
      byte[] payload = new byte[in.readInt()];
      in.readFully(payload);
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(payload);
      if (type == Nbd.REPLY_TYPE_ERROR) {
        int error = b.getInt();
        byte[] m = new byte[b.getShort()];
        b.get(m);
        return new Reply(handle, error, null, new String(m, StandardCharsets.UTF_8));
      }
      if (type == Nbd.REPLY_TYPE_OFFSET_DATA) {
        long at = b.getLong();
        if (data == null) {
          data = new java.io.ByteArrayOutputStream();
          firstOffset = at;
        } else if (at != firstOffset + data.size()) {
          throw new IOException("OFFSET_DATA chunk at " + at + " does not follow the previous one");
        }
        data.write(payload, 8, payload.length - 8);
      } else if (type != Nbd.REPLY_TYPE_NONE || (flags & Nbd.REPLY_FLAG_DONE) == 0) {
        if (data == null && (flags & Nbd.REPLY_FLAG_DONE) != 0) {
          return new Reply(handle, 0, payload, null);
        }
      }
      if ((flags & Nbd.REPLY_FLAG_DONE) != 0) {
        return new Reply(handle, 0, data == null ? payload : data.toByteArray(), null);
      }
      magic = in.readInt();
    }
  }

  /** True once the server has closed the connection (EOF or reset). */
  boolean closedByServer() {
    try {
      return in.read() == -1;
    } catch (IOException e) {
      return true;
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
