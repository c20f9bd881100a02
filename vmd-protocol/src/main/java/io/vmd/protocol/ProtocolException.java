package io.vmd.protocol;

/** The peer broke the framing (bad length or magic): the connection cannot continue. */
public final class ProtocolException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ProtocolException(String message) {
    super(message);
  }
}
