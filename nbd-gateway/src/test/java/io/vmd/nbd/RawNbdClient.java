package io.vmd.nbd;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A deliberately small blocking NBD client for protocol-edge tests (malformed input, error replies,
 * deep pipelines). The interop tests use real clients; this one exists to send what they never would.
 */
public final class RawNbdClient implements AutoCloseable {
  public final Socket socket;
  public final DataInputStream in;
  public final DataOutputStream out;
  public boolean structured;

  public record OptionReply(int option, int type, byte[] data) {
    public String text() {
      return new String(data, StandardCharsets.UTF_8);
    }
  }

  /** A transmission reply: errno 0 on success; data of a READ. */
  public record Reply(long handle, int error, byte[] data, String message) {}

  public RawNbdClient(String host, int port) throws IOException {
    socket = new Socket(host, port);
    socket.setSoTimeout(20_000);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(socket.getInputStream());
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
    long magic = in.readLong();
    long opt = in.readLong();
    int flags = in.readUnsignedShort();
    if (magic != NbdProtocol.NBDMAGIC || opt != NbdProtocol.IHAVEOPT || (flags & NbdProtocol.FLAG_FIXED_NEWSTYLE) == 0) {
      throw new IOException("not a fixed newstyle server");
    }
    out.writeInt(NbdProtocol.FLAG_C_FIXED_NEWSTYLE | NbdProtocol.FLAG_C_NO_ZEROES);
    out.flush();
  }

  public void sendOption(int option, byte[] data) throws IOException {
    out.writeLong(NbdProtocol.IHAVEOPT);
    out.writeInt(option);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  public OptionReply readOptionReply() throws IOException {
    long magic = in.readLong();
    if (magic != NbdProtocol.OPTION_REPLY_MAGIC) {
      throw new IOException("bad option reply magic");
    }
    int option = in.readInt();
    int type = in.readInt();
    byte[] data = new byte[in.readInt()];
    in.readFully(data);
    return new OptionReply(option, type, data);
  }

  public static byte[] goData(String name) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2);
    b.putInt(n.length).put(n).putShort((short) 0);
    return b.array();
  }

  /** The export's transmission flags, as the last GO told them. */
  public int transmissionFlags;

  /** NBD_OPT_GO; returns the export size. */
  public long go(String name) throws IOException {
    sendOption(NbdProtocol.OPT_GO, goData(name));
    long size = -1;
    while (true) {
      OptionReply r = readOptionReply();
      if (r.type() == NbdProtocol.REP_ACK) {
        return size;
      }
      if (r.type() != NbdProtocol.REP_INFO) {
        throw new IOException("GO refused: type " + Integer.toHexString(r.type()) + " " + r.text());
      }
      ByteBuffer b = ByteBuffer.wrap(r.data());
      if (b.getShort() == NbdProtocol.INFO_EXPORT) {
        size = b.getLong();
        transmissionFlags = b.getShort() & 0xffff;
      }
    }
  }

  /** NBD_OPT_EXPORT_NAME: the old way in, with no block sizes negotiated; returns the export size. */
  public long exportName(String name) throws IOException {
    sendOption(NbdProtocol.OPT_EXPORT_NAME, name.getBytes(StandardCharsets.UTF_8));
    long size = in.readLong();
    in.readUnsignedShort();
    return size;
  }

  public void structuredReplies() throws IOException {
    sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
    if (readOptionReply().type() != NbdProtocol.REP_ACK) {
      throw new IOException("no structured replies");
    }
    structured = true;
  }

  public void request(int type, int flags, long handle, long offset, long length, byte[] data) throws IOException {
    out.writeInt(NbdProtocol.REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt((int) length);
    if (data != null) {
      out.write(data);
    }
  }

  public void flush() throws IOException {
    out.flush();
  }

  /** Reads one reply; {@code readLength} is the data length expected for a simple READ reply. */
  public Reply reply(int readLength) throws IOException {
    int magic = in.readInt();
    if (magic == NbdProtocol.SIMPLE_REPLY_MAGIC) {
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
    ByteArrayOutputStream data = null;
    long firstOffset = -1;
    long handle = -1;
    while (true) {
      if (magic != NbdProtocol.STRUCTURED_REPLY_MAGIC) {
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
      ByteBuffer b = ByteBuffer.wrap(payload);
      if (type == NbdProtocol.REPLY_TYPE_ERROR) {
        int error = b.getInt();
        byte[] m = new byte[b.getShort()];
        b.get(m);
        return new Reply(handle, error, null, new String(m, StandardCharsets.UTF_8));
      }
      if (type == NbdProtocol.REPLY_TYPE_OFFSET_DATA) {
        long at = b.getLong();
        if (data == null) {
          data = new ByteArrayOutputStream();
          firstOffset = at;
        } else if (at != firstOffset + data.size()) {
          throw new IOException("OFFSET_DATA chunk at " + at + " does not follow the previous one");
        }
        data.write(payload, 8, payload.length - 8);
      } else if (type != NbdProtocol.REPLY_TYPE_NONE || (flags & NbdProtocol.REPLY_FLAG_DONE) == 0) {
        if (data == null && (flags & NbdProtocol.REPLY_FLAG_DONE) != 0) {
          return new Reply(handle, 0, payload, null);
        }
      }
      if ((flags & NbdProtocol.REPLY_FLAG_DONE) != 0) {
        return new Reply(handle, 0, data == null ? payload : data.toByteArray(), null);
      }
      magic = in.readInt();
    }
  }

  /** True once the server has closed the connection (EOF or reset). */
  public boolean closedByServer() {
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
