package io.vmd.nbd;

/**
 * The NBD wire protocol (NetworkBlockDevice/nbd doc/proto.md, fixed newstyle): magics, flags, option
 * and command codes, errno values and the byte offsets of the request and reply headers. The one place
 * these numbers are written: the gateway's decoder, session and reply flyweight use it, and so do the
 * benchmarks' own NBD peers (as nbdkit's plugins share {@code nbd-protocol.h}).
 */
public final class NbdProtocol {
  private NbdProtocol() {}

  public static final long NBDMAGIC = 0x4e42444d41474943L;
  public static final long IHAVEOPT = 0x49484156454F5054L;
  public static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
  public static final int REQUEST_MAGIC = 0x25609513;
  public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

  // Request header: magic, command flags, type, handle, offset, length (then a WRITE's payload).
  public static final int REQUEST_OFF_MAGIC = 0;
  public static final int REQUEST_OFF_FLAGS = 4;
  public static final int REQUEST_OFF_TYPE = 6;
  public static final int REQUEST_OFF_HANDLE = 8;
  public static final int REQUEST_OFF_OFFSET = 16;
  public static final int REQUEST_OFF_LENGTH = 24;
  public static final int REQUEST_HEADER = 28;

  // Simple reply: magic, error, handle (then a READ's data).
  public static final int SIMPLE_OFF_MAGIC = 0;
  public static final int SIMPLE_OFF_ERROR = 4;
  public static final int SIMPLE_OFF_HANDLE = 8;
  public static final int SIMPLE_REPLY_HEADER = 16;

  // Structured reply chunk: magic, flags, type, handle, payload length, then the chunk's payload.
  public static final int CHUNK_OFF_MAGIC = 0;
  public static final int CHUNK_OFF_FLAGS = 4;
  public static final int CHUNK_OFF_TYPE = 6;
  public static final int CHUNK_OFF_HANDLE = 8;
  public static final int CHUNK_OFF_LENGTH = 16;
  public static final int CHUNK_HEADER = 20;
  /** OFFSET_DATA and OFFSET_HOLE chunks: the export offset the chunk's data starts at. */
  public static final int CHUNK_OFF_DATA_OFFSET = 20;
  public static final int OFFSET_DATA_HEADER = 28;
  /** ERROR chunks: errno, then a message of a 16-bit length. */
  public static final int CHUNK_OFF_ERRNO = 20;
  public static final int CHUNK_OFF_MESSAGE_LENGTH = 24;
  public static final int CHUNK_OFF_MESSAGE = 26;
  /** BLOCK_STATUS chunks: the metadata context id, then (length, flags) pairs. */
  public static final int CHUNK_OFF_CONTEXT_ID = 20;
  public static final int CHUNK_OFF_EXTENTS = 24;
  public static final int EXTENT_SIZE = 8;

  // Handshake flags (server) and client flags.
  public static final int FLAG_FIXED_NEWSTYLE = 1;
  public static final int FLAG_NO_ZEROES = 2;
  public static final int FLAG_C_FIXED_NEWSTYLE = 1;
  public static final int FLAG_C_NO_ZEROES = 2;

  // Transmission flags.
  public static final int FLAG_HAS_FLAGS = 1;
  public static final int FLAG_READ_ONLY = 1 << 1;
  public static final int FLAG_SEND_FLUSH = 1 << 2;
  public static final int FLAG_SEND_FUA = 1 << 3;
  public static final int FLAG_SEND_TRIM = 1 << 5;
  public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
  public static final int FLAG_SEND_DF = 1 << 7;
  public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
  public static final int FLAG_SEND_CACHE = 1 << 10;

  // Options.
  public static final int OPT_EXPORT_NAME = 1;
  public static final int OPT_ABORT = 2;
  public static final int OPT_LIST = 3;
  public static final int OPT_STARTTLS = 5;
  public static final int OPT_INFO = 6;
  public static final int OPT_GO = 7;
  public static final int OPT_STRUCTURED_REPLY = 8;
  public static final int OPT_LIST_META_CONTEXT = 9;
  public static final int OPT_SET_META_CONTEXT = 10;

  // Option replies.
  public static final int REP_ACK = 1;
  public static final int REP_SERVER = 2;
  public static final int REP_INFO = 3;
  public static final int REP_META_CONTEXT = 4;
  public static final int REP_ERR_UNSUP = 0x80000000 | 1;
  public static final int REP_ERR_POLICY = 0x80000000 | 2;
  public static final int REP_ERR_INVALID = 0x80000000 | 3;
  public static final int REP_ERR_TLS_REQD = 0x80000000 | 5;
  public static final int REP_ERR_UNKNOWN = 0x80000000 | 6;
  public static final int REP_ERR_SHUTDOWN = 0x80000000 | 7;

  // Info types.
  public static final int INFO_EXPORT = 0;
  public static final int INFO_NAME = 1;
  public static final int INFO_DESCRIPTION = 2;
  public static final int INFO_BLOCK_SIZE = 3;

  // Commands and command flags.
  public static final int CMD_READ = 0;
  public static final int CMD_WRITE = 1;
  public static final int CMD_DISC = 2;
  public static final int CMD_FLUSH = 3;
  public static final int CMD_TRIM = 4;
  public static final int CMD_CACHE = 5;
  public static final int CMD_WRITE_ZEROES = 6;
  public static final int CMD_BLOCK_STATUS = 7;
  public static final int CMD_FLAG_FUA = 1;
  public static final int CMD_FLAG_NO_HOLE = 1 << 1;
  public static final int CMD_FLAG_DF = 1 << 2;
  public static final int CMD_FLAG_REQ_ONE = 1 << 3;

  // Structured reply chunks.
  public static final int REPLY_FLAG_DONE = 1;
  public static final int REPLY_TYPE_NONE = 0;
  public static final int REPLY_TYPE_OFFSET_DATA = 1;
  public static final int REPLY_TYPE_OFFSET_HOLE = 2;
  public static final int REPLY_TYPE_BLOCK_STATUS = 5;
  public static final int REPLY_TYPE_ERROR = (1 << 15) | 1;

  // base:allocation.
  public static final String BASE_ALLOCATION = "base:allocation";
  public static final int ALLOCATION_CONTEXT_ID = 1;
  public static final int STATE_HOLE = 1;
  public static final int STATE_ZERO = 2;

  // Errors (Linux errno values, as the protocol defines them).
  public static final int EPERM = 1;
  public static final int EIO = 5;
  public static final int ENOMEM = 12;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;
  public static final int EOVERFLOW = 75;
  public static final int ENOTSUP = 95;
  public static final int ESHUTDOWN = 108;

  /** Largest READ or WRITE payload: the maximum block size advertised in NBD_INFO_BLOCK_SIZE. */
  public static final int MAX_PAYLOAD = 32 << 20;
  /** Largest option payload accepted during negotiation. */
  public static final int MAX_OPTION = 64 << 10;
  public static final int MAX_STRING = 4096;

  public static String commandName(int type) {
    switch (type) {
      case CMD_READ: return "READ";
      case CMD_WRITE: return "WRITE";
      case CMD_DISC: return "DISC";
      case CMD_FLUSH: return "FLUSH";
      case CMD_TRIM: return "TRIM";
      case CMD_CACHE: return "CACHE";
      case CMD_WRITE_ZEROES: return "WRITE_ZEROES";
      case CMD_BLOCK_STATUS: return "BLOCK_STATUS";
      default: return "CMD_" + type;
    }
  }
}
