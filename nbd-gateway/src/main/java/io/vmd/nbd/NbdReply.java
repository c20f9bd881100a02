package io.vmd.nbd;

import static io.vmd.nbd.NbdProtocol.CHUNK_HEADER;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_CONTEXT_ID;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_DATA_OFFSET;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_ERRNO;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_EXTENTS;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_FLAGS;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_HANDLE;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_LENGTH;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_MAGIC;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_MESSAGE;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_MESSAGE_LENGTH;
import static io.vmd.nbd.NbdProtocol.CHUNK_OFF_TYPE;
import static io.vmd.nbd.NbdProtocol.EXTENT_SIZE;
import static io.vmd.nbd.NbdProtocol.OFFSET_DATA_HEADER;
import static io.vmd.nbd.NbdProtocol.SIMPLE_OFF_ERROR;
import static io.vmd.nbd.NbdProtocol.SIMPLE_OFF_HANDLE;
import static io.vmd.nbd.NbdProtocol.SIMPLE_OFF_MAGIC;
import static io.vmd.nbd.NbdProtocol.SIMPLE_REPLY_HEADER;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;

/**
 * Encodes NBD transmission replies in place, by the named offsets of {@link NbdProtocol}: one method
 * per reply type, each making exactly the bytes of its header (and small payload) with no
 * intermediate objects. Data is never copied here: a READ's bytes follow their header as a buffer of
 * their own.
 */
final class NbdReply {
  /** The longest error message a structured reply carries (the protocol allows 4096; clients log it). */
  static final int MAX_MESSAGE = 1024;

  private NbdReply() {}

  /** A simple reply: the whole answer to a request, or the header before a READ's data. */
  static ByteBuf simple(ByteBufAllocator alloc, long handle, int errno) {
    ByteBuf b = alloc.buffer(SIMPLE_REPLY_HEADER);
    b.setInt(SIMPLE_OFF_MAGIC, NbdProtocol.SIMPLE_REPLY_MAGIC);
    b.setInt(SIMPLE_OFF_ERROR, errno);
    b.setLong(SIMPLE_OFF_HANDLE, handle);
    return b.writerIndex(SIMPLE_REPLY_HEADER);
  }

  /** A structured NONE chunk with the DONE flag: a READ that succeeded with nothing more to say. */
  static ByteBuf done(ByteBufAllocator alloc, long handle) {
    ByteBuf b = alloc.buffer(CHUNK_HEADER);
    chunkHeader(b, handle, NbdProtocol.REPLY_FLAG_DONE, NbdProtocol.REPLY_TYPE_NONE, 0);
    return b.writerIndex(CHUNK_HEADER);
  }

  /** The header of an OFFSET_DATA chunk: {@code dataLength} bytes of data at {@code offset} follow it. */
  static ByteBuf offsetData(ByteBufAllocator alloc, long handle, boolean last, long offset, int dataLength) {
    ByteBuf b = alloc.buffer(OFFSET_DATA_HEADER);
    chunkHeader(b, handle, last ? NbdProtocol.REPLY_FLAG_DONE : 0, NbdProtocol.REPLY_TYPE_OFFSET_DATA,
        OFFSET_DATA_HEADER - CHUNK_HEADER + dataLength);
    b.setLong(CHUNK_OFF_DATA_OFFSET, offset);
    return b.writerIndex(OFFSET_DATA_HEADER);
  }

  /** A structured ERROR chunk with the DONE flag: errno and the first {@link #MAX_MESSAGE} bytes of {@code message}. */
  static ByteBuf error(ByteBufAllocator alloc, long handle, int errno, String message) {
    byte[] m = message.getBytes(StandardCharsets.UTF_8);
    int len = Math.min(m.length, MAX_MESSAGE);
    ByteBuf b = alloc.buffer(CHUNK_OFF_MESSAGE + len);
    chunkHeader(b, handle, NbdProtocol.REPLY_FLAG_DONE, NbdProtocol.REPLY_TYPE_ERROR, CHUNK_OFF_MESSAGE - CHUNK_HEADER + len);
    b.setInt(CHUNK_OFF_ERRNO, errno);
    b.setShort(CHUNK_OFF_MESSAGE_LENGTH, len);
    b.setBytes(CHUNK_OFF_MESSAGE, m, 0, len);
    return b.writerIndex(CHUNK_OFF_MESSAGE + len);
  }

  /**
   * A BLOCK_STATUS chunk (DONE) for the base:allocation context, without its extents: append them with
   * {@link #extent}, then {@link #endBlockStatus} sets the chunk's length.
   */
  static ByteBuf blockStatus(ByteBufAllocator alloc, long handle, int expectedExtents) {
    ByteBuf b = alloc.buffer(CHUNK_OFF_EXTENTS + EXTENT_SIZE * Math.min(expectedExtents, 8));
    chunkHeader(b, handle, NbdProtocol.REPLY_FLAG_DONE, NbdProtocol.REPLY_TYPE_BLOCK_STATUS, 0);
    b.setInt(CHUNK_OFF_CONTEXT_ID, NbdProtocol.ALLOCATION_CONTEXT_ID);
    return b.writerIndex(CHUNK_OFF_EXTENTS);
  }

  static void extent(ByteBuf blockStatus, int length, int flags) {
    blockStatus.writeInt(length).writeInt(flags);
  }

  static ByteBuf endBlockStatus(ByteBuf blockStatus) {
    return blockStatus.setInt(CHUNK_OFF_LENGTH, blockStatus.writerIndex() - CHUNK_HEADER);
  }

  private static void chunkHeader(ByteBuf b, long handle, int flags, int type, int length) {
    b.setInt(CHUNK_OFF_MAGIC, NbdProtocol.STRUCTURED_REPLY_MAGIC);
    b.setShort(CHUNK_OFF_FLAGS, flags);
    b.setShort(CHUNK_OFF_TYPE, type);
    b.setLong(CHUNK_OFF_HANDLE, handle);
    b.setInt(CHUNK_OFF_LENGTH, length);
  }
}
