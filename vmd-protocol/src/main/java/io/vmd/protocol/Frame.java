package io.vmd.protocol;

import io.netty.buffer.ByteBuf;

/**
 * The VMD frame: a big-endian, length-prefixed header followed by an op-specific payload.
 *
 * <pre>
 *  int   length      bytes that follow this field (header + payload)
 *  short magic       0x564D ("VM")
 *  byte  version     {@link #VERSION}
 *  byte  op          {@link Op}
 *  short flags       {@link #FLAG_REPLY}, {@link #FLAG_MORE}
 *  short status      {@link ErrorCode} in replies, 0 in requests
 *  long  requestId   chosen by the client, echoed in the reply; 0 for server pushes
 *  int   namespace   namespace id (0 when none)
 *  long  epoch       writer's epoch on writes; resulting epoch in NS_ATTACH replies
 *  long  firstPage   first page index of the range
 *  int   pageCount   number of pages (or entries, for LIST replies)
 *  ...   payload
 * </pre>
 *
 * The first 16 bytes (magic, version, op, flags, status, request id) keep their offsets in every
 * future version, so a peer can always answer a version mismatch with a readable error.
 *
 * <p>The methods here are a flyweight over a decoded frame buffer (reader index at the magic): they
 * read fields in place and allocate nothing.
 */
public final class Frame {
  public static final short MAGIC = 0x564D;
  public static final byte VERSION = 1;

  public static final int FLAG_REPLY = 1;
  /** On LIST replies: more frames for the same request follow. */
  public static final int FLAG_MORE = 2;

  public static final int LENGTH_FIELD = 4;
  static final int OFF_MAGIC = 0;
  static final int OFF_VERSION = 2;
  static final int OFF_OP = 3;
  static final int OFF_FLAGS = 4;
  static final int OFF_STATUS = 6;
  static final int OFF_REQUEST_ID = 8;
  static final int OFF_NAMESPACE = 16;
  static final int OFF_EPOCH = 20;
  static final int OFF_FIRST_PAGE = 28;
  static final int OFF_PAGE_COUNT = 36;
  public static final int HEADER_SIZE = 40;

  /** Most pages one PUT or GET frame may carry (4 MiB of payload). */
  public static final int MAX_PAGES = 1024;
  /** Most page indices one LIST reply frame carries. */
  public static final int MAX_LIST_ENTRIES = 8192;
  /** Largest frame body (header + payload) a peer accepts by default. */
  public static final int MAX_FRAME = HEADER_SIZE + MAX_PAGES * Pages.PAGE_SIZE + 4096;
  /** Longest string (cluster or namespace name, error message) in bytes. */
  public static final int MAX_STRING = 1024;

  private Frame() {}

  public static int magic(ByteBuf f) {
    return f.getShort(f.readerIndex() + OFF_MAGIC);
  }

  public static int version(ByteBuf f) {
    return f.getByte(f.readerIndex() + OFF_VERSION);
  }

  public static byte op(ByteBuf f) {
    return f.getByte(f.readerIndex() + OFF_OP);
  }

  public static int flags(ByteBuf f) {
    return f.getUnsignedShort(f.readerIndex() + OFF_FLAGS);
  }

  public static boolean isReply(ByteBuf f) {
    return (flags(f) & FLAG_REPLY) != 0;
  }

  public static boolean hasMore(ByteBuf f) {
    return (flags(f) & FLAG_MORE) != 0;
  }

  public static int status(ByteBuf f) {
    return f.getUnsignedShort(f.readerIndex() + OFF_STATUS);
  }

  public static long requestId(ByteBuf f) {
    return f.getLong(f.readerIndex() + OFF_REQUEST_ID);
  }

  public static int namespace(ByteBuf f) {
    return f.getInt(f.readerIndex() + OFF_NAMESPACE);
  }

  public static long epoch(ByteBuf f) {
    return f.getLong(f.readerIndex() + OFF_EPOCH);
  }

  public static long firstPage(ByteBuf f) {
    return f.getLong(f.readerIndex() + OFF_FIRST_PAGE);
  }

  public static int pageCount(ByteBuf f) {
    return f.getInt(f.readerIndex() + OFF_PAGE_COUNT);
  }

  public static int payloadLength(ByteBuf f) {
    return f.readableBytes() - HEADER_SIZE;
  }

  /** Absolute index of the first payload byte. */
  public static int payloadIndex(ByteBuf f) {
    return f.readerIndex() + HEADER_SIZE;
  }

  /** Moves the reader index to the payload, for sequential reads with {@link Codec}. */
  public static ByteBuf skipHeader(ByteBuf f) {
    f.readerIndex(f.readerIndex() + HEADER_SIZE);
    return f;
  }

  /** Writes a complete header (length prefix included) for a payload of {@code payloadLength} bytes. */
  public static void writeHeader(
      ByteBuf out,
      byte op,
      int flags,
      int status,
      long requestId,
      int namespace,
      long epoch,
      long firstPage,
      int pageCount,
      int payloadLength) {
    out.writeInt(HEADER_SIZE + payloadLength);
    out.writeShort(MAGIC);
    out.writeByte(VERSION);
    out.writeByte(op);
    out.writeShort(flags);
    out.writeShort(status);
    out.writeLong(requestId);
    out.writeInt(namespace);
    out.writeLong(epoch);
    out.writeLong(firstPage);
    out.writeInt(pageCount);
  }

  /** Bytes of the presence bitmap that leads a GET reply for {@code pageCount} pages (whole longs). */
  public static int bitmapBytes(int pageCount) {
    return ((pageCount + 63) >>> 6) << 3;
  }

  /**
   * Checks the structure of a request frame. Returns null when it is well formed, else why not. A
   * malformed request means the peer does not speak this protocol correctly; the caller answers
   * BAD_REQUEST and closes the connection.
   */
  public static String checkRequest(ByteBuf f) {
    String common = checkCommon(f);
    if (common != null) {
      return common;
    }
    if (isReply(f)) {
      return "a reply frame sent as a request";
    }
    byte op = op(f);
    int count = pageCount(f);
    int payload = payloadLength(f);
    switch (op) {
      case Op.PUT:
        if (count < 1 || count > MAX_PAGES) {
          return "PUT page count " + count + " outside 1.." + MAX_PAGES;
        }
        if (payload != count * Pages.PAGE_SIZE) {
          return "PUT payload of " + payload + " bytes for " + count + " pages";
        }
        return null;
      case Op.GET:
        if (count < 1 || count > MAX_PAGES) {
          return "GET page count " + count + " outside 1.." + MAX_PAGES;
        }
        return payload == 0 ? null : "GET request with a payload";
      case Op.DELETE:
        if (count < 1) {
          return "DELETE page count " + count;
        }
        return payload == 0 ? null : "DELETE request with a payload";
      default:
        return null;
    }
  }

  /** Checks the structure of a reply frame; null when well formed. */
  public static String checkReply(ByteBuf f) {
    String common = checkCommon(f);
    if (common != null) {
      return common;
    }
    if (!isReply(f)) {
      return op(f) == Op.AVAILABILITY && requestId(f) == 0 ? null : "a request frame sent as a reply";
    }
    if (status(f) != 0 || op(f) != Op.GET) {
      return null;
    }
    int count = pageCount(f);
    if (count < 1 || count > MAX_PAGES) {
      return "GET reply page count " + count;
    }
    int bitmap = bitmapBytes(count);
    if (payloadLength(f) < bitmap) {
      return "GET reply shorter than its bitmap";
    }
    int present = 0;
    int base = payloadIndex(f);
    for (int i = 0; i < bitmap; i += 8) {
      present += Long.bitCount(f.getLong(base + i));
    }
    if (payloadLength(f) != bitmap + present * Pages.PAGE_SIZE) {
      return "GET reply payload does not match its bitmap";
    }
    return null;
  }

  private static String checkCommon(ByteBuf f) {
    if (f.readableBytes() < HEADER_SIZE) {
      return "frame of " + f.readableBytes() + " bytes is shorter than the header";
    }
    if (magic(f) != MAGIC) {
      return String.format("bad magic 0x%04x", magic(f) & 0xffff);
    }
    if (!Op.isKnown(op(f)) && !(isReply(f) && status(f) != 0)) {
      return "unknown op " + op(f);
    }
    if (firstPage(f) < 0) {
      return "negative first page " + firstPage(f);
    }
    if (pageCount(f) < 0) {
      return "negative page count " + pageCount(f);
    }
    return null;
  }
}
