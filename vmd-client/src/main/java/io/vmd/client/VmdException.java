package io.vmd.client;

import io.vmd.meta.MetaException;
import io.vmd.protocol.ErrorCode;
import java.io.IOException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** A request failed; {@link #code()} says why in terms a caller can act on (ENOSPC, EINVAL, EIO). */
public final class VmdException extends IOException {
  private static final long serialVersionUID = 1L;
  private final ErrorCode code;

  public VmdException(ErrorCode code, String message) {
    super(message);
    this.code = code;
  }

  public VmdException(ErrorCode code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public ErrorCode code() {
    return code;
  }

  /** A control-plane failure, with its code. */
  public static VmdException of(MetaException e) {
    return new VmdException(e.code(), e.getMessage(), e);
  }

  /** Unwraps what a future failed with into a VmdException. */
  public static VmdException from(Throwable t) {
    Throwable c = t;
    while ((c instanceof CompletionException || c instanceof ExecutionException) && c.getCause() != null) {
      c = c.getCause();
    }
    if (c instanceof VmdException v) {
      return v;
    }
    if (c instanceof MetaException m) {
      return of(m);
    }
    return new VmdException(ErrorCode.INTERNAL, String.valueOf(c.getMessage()), c);
  }
}
