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
 *  long  stamp       on PUT: the version stored with every page of the frame (see below)
 *  ...   payload
 * </pre>
 *
 * <p>Page versions ("stamps"). Every copy of a page carries the stamp of the write that made it, and
 * LIST returns it: a client attaching a namespace keeps, of each page, only the copies with the
 * highest stamp, so a server that was away while a page was rewritten elsewhere cannot pass its old
 * copy off as current, even when no writer is left to tell it. The writer makes stamps as
 * {@code epoch << 40 | sequence}: a later writer (higher epoch) always stamps higher, and one writer's
 * stamps grow with every write. Servers store stamps and compare nothing.
 *
 * <p>Payloads by op: PUT {@code pageCount * 4096} bytes of pages; GET reply a presence bitmap
 * ({@link #bitmapBytes}), then the pages present, then, when the request set {@link #FLAG_STAMPS},
 * the stamp of each page present; LIST reply {@code pageCount} entries of (long page, long stamp).
 * With {@link #FLAG_SEALED} (PUT, and GET with its reply) each page is a sealed record of
 * {@link #SEALED_RECORD} bytes: the ciphertext and its 16-byte AES-GCM tag, which the server stores
 * beside the page and never reads.
 *
 * The first 16 bytes (magic, version, op, flags, status, request id) keep their offsets in every
 * future version, so a peer can always answer a version mismatch with a readable error.
 *
 * <p>The methods here are a flyweight over a decoded frame buffer (reader index at the magic): they
 * read fields in place and allocate nothing.
 */
public final class Frame {
  public static final short MAGIC = 0x564D;
  /** 2: the header gained the stamp and LIST entries carry it. 3: HELLO names the server (control plane id); NOT_READY. */
  public static final byte VERSION = 3;

  public static final int FLAG_REPLY = 1;
  /** On LIST replies: more frames for the same request follow. */
  public static final int FLAG_MORE = 2;
  /** On GET requests and their replies: the reply ends with the stamp of each page present. */
  public static final int FLAG_STAMPS = 4;
  /** On PUT, and on GET and its reply: pages travel as sealed records (ciphertext, then tag). */
  public static final int FLAG_SEALED = 8;
  /** Bytes of a sealed page's authentication tag. */
  public static final int SEAL_TAG = 16;
  /** Bytes of one sealed page on the wire: the encrypted page, then its tag. */
  public static final int SEALED_RECORD = Pages.PAGE_SIZE + SEAL_TAG;

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
  static final int OFF_STAMP = 40;
  public static final int HEADER_SIZE = 48;
  /** Bytes of one LIST reply entry: page index and stamp. */
  public static final int LIST_ENTRY = 16;
  /** Bits of a stamp below the writer's epoch. */
  public static final int STAMP_SEQUENCE_BITS = 40;
  /** Largest epoch a stamp can carry. */
  public static final long MAX_STAMPED_EPOCH = (1L << (63 - STAMP_SEQUENCE_BITS)) - 1;

  /** Most pages one PUT or GET frame may carry (4 MiB of payload). */
  public static final int MAX_PAGES = 1024;
  /** Most page indices one LIST reply frame carries. */
  public static final int MAX_LIST_ENTRIES = 8192;
  /** Largest frame body (header + payload) a peer accepts by default. */
  public static final int MAX_FRAME = HEADER_SIZE + MAX_PAGES * (SEALED_RECORD + 8) + 4096;

  /** Bytes of one page in a frame with these flags: a plain page, or a sealed record. */
  public static int recordSize(int flags) {
    return (flags & FLAG_SEALED) != 0 ? SEALED_RECORD : Pages.PAGE_SIZE;
  }
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

  public static long stamp(ByteBuf f) {
    return f.getLong(f.readerIndex() + OFF_STAMP);
  }

  /** The first stamp a writer at {@code epoch} may use. */
  public static long firstStamp(long epoch) {
    return epoch << STAMP_SEQUENCE_BITS;
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

  /**
   * Writes a complete header (length prefix included) with stamp 0 for a payload of
   * {@code payloadLength} bytes.
   */
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
    writeHeader(out, op, flags, status, requestId, namespace, epoch, firstPage, pageCount, 0L, payloadLength);
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
      long stamp,
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
    out.writeLong(stamp);
  }

  /** Bytes of the presence bitmap that leads a GET reply for {@code pageCount} pages (whole longs). */
  public static int bitmapBytes(int pageCount) {
    return ((pageCount + 63) >>> 6) << 3;
  }

  /** How many of the first {@code count} pages the GET reply bitmap at {@code bitmapAt} marks present. */
  public static int presentCount(ByteBuf buf, int bitmapAt, int count) {
    int n = 0;
    for (int i = 0; i < count; i += 64) {
      long word = buf.getLong(bitmapAt + (i >>> 3));
      n += Long.bitCount(count - i >= 64 ? word : word & ((1L << (count - i)) - 1));
    }
    return n;
  }

  /** Whether page {@code i} is marked present in the GET reply bitmap at absolute index {@code bitmapAt}. */
  public static boolean present(ByteBuf buf, int bitmapAt, int i) {
    return (buf.getLong(bitmapAt + ((i >>> 6) << 3)) & (1L << (i & 63))) != 0;
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
        if (payload != count * recordSize(flags(f))) {
          return "PUT payload of " + payload + " bytes for " + count + ((flags(f) & FLAG_SEALED) != 0 ? " sealed" : "")
              + " pages";
        }
        return stamp(f) < 0 ? "negative stamp " + stamp(f) : null;
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
    if (status(f) == 0 && op(f) == Op.LIST && payloadLength(f) != pageCount(f) * LIST_ENTRY) {
      return "LIST reply of " + payloadLength(f) + " bytes for " + pageCount(f) + " entries";
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
    int stamps = (flags(f) & FLAG_STAMPS) != 0 ? present * 8 : 0;
    if (payloadLength(f) != bitmap + present * recordSize(flags(f)) + stamps) {
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
