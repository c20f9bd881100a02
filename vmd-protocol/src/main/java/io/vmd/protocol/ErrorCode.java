package io.vmd.protocol;

/** Status carried in a reply header. 0 is success; every other value names why a request failed. */
public enum ErrorCode {
  OK(0),
  /** The server has no room for the new pages of this request; nothing of it was written. */
  NO_SPACE(1),
  /** The write carries an epoch older than the namespace's: another writer owns the namespace now. */
  STALE_EPOCH(2),
  NO_NAMESPACE(3),
  /** Malformed or semantically invalid request (out-of-range pages, bad payload). */
  BAD_REQUEST(4),
  /** Protocol version mismatch; the connection is closed after this reply. */
  VERSION(5),
  /** The peer belongs to a different cluster; the connection is closed after this reply. */
  WRONG_CLUSTER(6),
  /** A namespace with that id or name exists with other attributes. */
  EXISTS(7),
  /** The server failed while serving a valid request (an I/O error of a persisted store). */
  INTERNAL(8),
  /** Client side only: the server could not be reached, the connection broke or the request timed out. */
  UNAVAILABLE(9),
  /** The cluster is keyed and the peer did not prove it holds the key. */
  UNAUTHORIZED(10),
  /**
   * The server has not caught up with the control plane (just started, or its view is older than
   * allowed, or the request carries a newer epoch than it knows): try again shortly.
   */
  NOT_READY(11),
  /** Client side only: the namespace is attached read-only here (another owner writes it). */
  READ_ONLY(12),
  /** Control plane: no such host or VM. */
  NOT_FOUND(13);

  private static final ErrorCode[] BY_CODE;

  static {
    ErrorCode[] all = values();
    BY_CODE = new ErrorCode[all.length];
    for (ErrorCode c : all) {
      BY_CODE[c.code] = c;
    }
  }

  public final short code;

  ErrorCode(int code) {
    this.code = (short) code;
  }

  /** The code for a status value; unknown values (a newer peer) read as INTERNAL rather than failing. */
  public static ErrorCode of(int status) {
    return status >= 0 && status < BY_CODE.length ? BY_CODE[status] : INTERNAL;
  }
}
