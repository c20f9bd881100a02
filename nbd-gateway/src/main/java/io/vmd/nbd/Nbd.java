package io.vmd.nbd;

/** Constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), fixed newstyle. */
final class Nbd {
  private Nbd() {}

  static final long NBDMAGIC = 0x4e42444d41474943L;
  static final long IHAVEOPT = 0x49484156454F5054L;
  static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
  static final int REQUEST_MAGIC = 0x25609513;
  static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

  // Handshake flags (server) and client flags.
  static final int FLAG_FIXED_NEWSTYLE = 1;
  static final int FLAG_NO_ZEROES = 2;
  static final int FLAG_C_FIXED_NEWSTYLE = 1;
  static final int FLAG_C_NO_ZEROES = 2;

  // Transmission flags.
  static final int FLAG_HAS_FLAGS = 1;
  static final int FLAG_READ_ONLY = 1 << 1;
  static final int FLAG_SEND_FLUSH = 1 << 2;
  static final int FLAG_SEND_FUA = 1 << 3;
  static final int FLAG_SEND_TRIM = 1 << 5;
  static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
  static final int FLAG_SEND_DF = 1 << 7;
  static final int FLAG_CAN_MULTI_CONN = 1 << 8;
  static final int FLAG_SEND_CACHE = 1 << 10;

  // Options.
  static final int OPT_EXPORT_NAME = 1;
  static final int OPT_ABORT = 2;
  static final int OPT_LIST = 3;
  static final int OPT_STARTTLS = 5;
  static final int OPT_INFO = 6;
  static final int OPT_GO = 7;
  static final int OPT_STRUCTURED_REPLY = 8;
  static final int OPT_LIST_META_CONTEXT = 9;
  static final int OPT_SET_META_CONTEXT = 10;

  // Option replies.
  static final int REP_ACK = 1;
  static final int REP_SERVER = 2;
  static final int REP_INFO = 3;
  static final int REP_META_CONTEXT = 4;
  static final int REP_ERR_UNSUP = 0x80000000 | 1;
  static final int REP_ERR_POLICY = 0x80000000 | 2;
  static final int REP_ERR_INVALID = 0x80000000 | 3;
  static final int REP_ERR_TLS_REQD = 0x80000000 | 5;
  static final int REP_ERR_UNKNOWN = 0x80000000 | 6;
  static final int REP_ERR_SHUTDOWN = 0x80000000 | 7;

  // Info types.
  static final int INFO_EXPORT = 0;
  static final int INFO_NAME = 1;
  static final int INFO_DESCRIPTION = 2;
  static final int INFO_BLOCK_SIZE = 3;

  // Commands and command flags.
  static final int CMD_READ = 0;
  static final int CMD_WRITE = 1;
  static final int CMD_DISC = 2;
  static final int CMD_FLUSH = 3;
  static final int CMD_TRIM = 4;
  static final int CMD_CACHE = 5;
  static final int CMD_WRITE_ZEROES = 6;
  static final int CMD_BLOCK_STATUS = 7;
  static final int CMD_FLAG_FUA = 1;
  static final int CMD_FLAG_NO_HOLE = 1 << 1;
  static final int CMD_FLAG_DF = 1 << 2;
  static final int CMD_FLAG_REQ_ONE = 1 << 3;

  // Structured reply chunks.
  static final int REPLY_FLAG_DONE = 1;
  static final int REPLY_TYPE_NONE = 0;
  static final int REPLY_TYPE_OFFSET_DATA = 1;
  static final int REPLY_TYPE_OFFSET_HOLE = 2;
  static final int REPLY_TYPE_BLOCK_STATUS = 5;
  static final int REPLY_TYPE_ERROR = (1 << 15) | 1;

  // base:allocation.
  static final String BASE_ALLOCATION = "base:allocation";
  static final int ALLOCATION_CONTEXT_ID = 1;
  static final int STATE_HOLE = 1;
  static final int STATE_ZERO = 2;

  // Errors (Linux errno values, as the protocol defines them).
  static final int EPERM = 1;
  static final int EIO = 5;
  static final int ENOMEM = 12;
  static final int EINVAL = 22;
  static final int ENOSPC = 28;
  static final int EOVERFLOW = 75;
  static final int ENOTSUP = 95;
  static final int ESHUTDOWN = 108;

  /** Largest READ or WRITE payload: the maximum block size advertised in NBD_INFO_BLOCK_SIZE. */
  static final int MAX_PAYLOAD = 32 << 20;
  /** Largest option payload accepted during negotiation. */
  static final int MAX_OPTION = 64 << 10;
  static final int MAX_STRING = 4096;

  static String commandName(int type) {
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
