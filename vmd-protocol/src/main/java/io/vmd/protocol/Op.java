package io.vmd.protocol;

/**
 * Operation codes. A reply carries the request's op with {@link Frame#FLAG_REPLY} set, so a client can
 * always tell which request a reply answers even before looking up the request id.
 */
public final class Op {
  public static final byte HELLO = 1;
  public static final byte PUT = 2;
  public static final byte GET = 3;
  public static final byte DELETE = 4;
  public static final byte LIST = 5;
  public static final byte NS_CREATE = 6;
  public static final byte NS_DELETE = 7;
  public static final byte NS_LIST = 8;
  public static final byte NS_INFO = 9;
  public static final byte NS_ATTACH = 10;
  /** Server to client push (request id 0) and also a request/reply for one-shot tools. */
  public static final byte AVAILABILITY = 11;

  /** Client to server after a keyed HELLO: the client's proof that it holds the cluster key. */
  public static final byte AUTH = 12;

  static final byte MAX = AUTH;
  private static final String[] NAMES = {
    "?", "HELLO", "PUT", "GET", "DELETE", "LIST", "NS_CREATE", "NS_DELETE", "NS_LIST", "NS_INFO",
    "NS_ATTACH", "AVAILABILITY", "AUTH"
  };

  private Op() {}

  public static boolean isKnown(int op) {
    return op >= HELLO && op <= MAX;
  }

  public static String name(int op) {
    return isKnown(op) ? NAMES[op] : "OP_" + op;
  }

  /** Ops whose pages belong to a namespace and are checked against its size. */
  public static boolean isPageOp(int op) {
    return op == PUT || op == GET || op == DELETE;
  }
}
