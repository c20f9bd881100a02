package io.vmd.meta;

/** Where a memory server is in its life in the cluster. */
public enum ServerStatus {
  /** Registered; not yet caught up with the namespace table, so nothing new is placed on it. */
  JOINING,
  /** Serving: takes new pages. */
  ACTIVE,
  /** Serving what it holds, taking nothing new; its pages are being moved off. */
  DRAINING,
  /** Gone for good: whatever it held is lost or was moved. Its id can never come back. */
  REMOVED;

  /** Whether clients should place new pages on a server in this state. */
  public boolean takesNewPages() {
    return this == ACTIVE;
  }
}
