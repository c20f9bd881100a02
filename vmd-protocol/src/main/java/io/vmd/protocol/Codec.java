package io.vmd.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Encoders and decoders of the control-plane payloads (HELLO, namespaces, availability, errors).
 * These run off the data path, so plain objects are fine here; page payloads never pass through.
 * Decoders read from the buffer's reader index and throw {@link IllegalArgumentException} on a
 * truncated or invalid payload, which callers turn into BAD_REQUEST.
 */
public final class Codec {
  private Codec() {}

  public static void writeString(ByteBuf out, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    if (b.length > Frame.MAX_STRING) {
      throw new IllegalArgumentException("string of " + b.length + " bytes is too long");
    }
    out.writeShort(b.length);
    out.writeBytes(b);
  }

  public static String readString(ByteBuf in) {
    need(in, 2);
    int n = in.readUnsignedShort();
    if (n > Frame.MAX_STRING) {
      throw new IllegalArgumentException("string length " + n + " over " + Frame.MAX_STRING);
    }
    need(in, n);
    String s = in.toString(in.readerIndex(), n, StandardCharsets.UTF_8);
    in.skipBytes(n);
    return s;
  }

  public static int stringSize(String s) {
    return 2 + s.getBytes(StandardCharsets.UTF_8).length;
  }

  public static void writeNamespace(ByteBuf out, NamespaceRecord ns) {
    out.writeInt(ns.id());
    writeString(out, ns.name());
    out.writeLong(ns.sizeBytes());
    out.writeInt(ns.replicas());
    out.writeLong(ns.epoch());
  }

  public static NamespaceRecord readNamespace(ByteBuf in) {
    need(in, 4);
    int id = in.readInt();
    String name = readString(in);
    need(in, 20);
    return new NamespaceRecord(id, name, in.readLong(), in.readInt(), in.readLong());
  }

  public static void writeNamespaces(ByteBuf out, List<NamespaceRecord> list) {
    out.writeInt(list.size());
    for (NamespaceRecord ns : list) {
      writeNamespace(out, ns);
    }
  }

  public static List<NamespaceRecord> readNamespaces(ByteBuf in) {
    need(in, 4);
    int n = in.readInt();
    if (n < 0 || n > in.readableBytes() / 26) {
      throw new IllegalArgumentException("namespace count " + n + " does not fit the payload");
    }
    List<NamespaceRecord> list = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      list.add(readNamespace(in));
    }
    return list;
  }

  public static void writeAvailability(ByteBuf out, Availability a) {
    out.writeLong(a.capacityBytes());
    out.writeLong(a.usedBytes());
    out.writeLong(a.freeBytes());
    out.writeLong(a.pages());
  }

  public static Availability readAvailability(ByteBuf in) {
    need(in, Availability.ENCODED_SIZE);
    return new Availability(in.readLong(), in.readLong(), in.readLong(), in.readLong());
  }

  public static void writeHello(ByteBuf out, Hello h) {
    writeString(out, h.cluster());
    out.writeLong(h.instanceId());
    writeString(out, h.serverId());
    out.writeInt(h.maxFrame());
    writeAvailability(out, h.availability());
  }

  public static Hello readHello(ByteBuf in) {
    String cluster = readString(in);
    need(in, 8);
    long instance = in.readLong();
    String serverId = readString(in);
    need(in, 4);
    int maxFrame = in.readInt();
    return new Hello(cluster, instance, serverId, maxFrame, readAvailability(in));
  }

  /** Builds a complete frame whose payload is written by {@code body} (may be null). */
  public static ByteBuf frame(
      ByteBufAllocator alloc,
      byte op,
      int flags,
      int status,
      long requestId,
      int namespace,
      long epoch,
      long firstPage,
      int pageCount,
      Consumer<ByteBuf> body) {
    ByteBuf buf = alloc.buffer(Frame.LENGTH_FIELD + Frame.HEADER_SIZE + 64);
    Frame.writeHeader(buf, op, flags, status, requestId, namespace, epoch, firstPage, pageCount, 0);
    if (body != null) {
      body.accept(buf);
      buf.setInt(0, buf.readableBytes() - Frame.LENGTH_FIELD);
    }
    return buf;
  }

  /** An error reply for request {@code requestId}: status and a human-readable message. */
  public static ByteBuf error(
      ByteBufAllocator alloc, byte op, long requestId, int namespace, ErrorCode code, String message) {
    String m = message.length() > 300 ? message.substring(0, 300) : message;
    return frame(alloc, op, Frame.FLAG_REPLY, code.code, requestId, namespace, 0, 0, 0,
        b -> writeString(b, m));
  }

  /** The message of an error reply, or a generic text when its payload is unreadable. */
  public static String errorMessage(ByteBuf frame) {
    ByteBuf p = frame.duplicate();
    Frame.skipHeader(p);
    try {
      return readString(p);
    } catch (RuntimeException e) {
      return ErrorCode.of(Frame.status(frame)).name();
    }
  }

  private static void need(ByteBuf in, int n) {
    if (in.readableBytes() < n) {
      throw new IllegalArgumentException(
          "payload truncated: need " + n + " bytes, have " + in.readableBytes());
    }
  }
}
