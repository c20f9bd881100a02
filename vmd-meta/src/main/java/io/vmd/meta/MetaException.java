package io.vmd.meta;

import io.vmd.protocol.ErrorCode;

/** A control-plane request that failed, with the reason as one of the wire protocol's codes. */
public final class MetaException extends Exception {
  private static final long serialVersionUID = 1L;
  private final ErrorCode code;

  public MetaException(ErrorCode code, String message) {
    super(message);
    this.code = code;
  }

  public MetaException(ErrorCode code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public ErrorCode code() {
    return code;
  }
}
