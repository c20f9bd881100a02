package io.vmd.common;

import java.util.function.Supplier;

/**
 * Whether a role is ready to serve, and if not, why: what {@code /readyz} answers (200, or 503 with
 * the reason). A role starts not ready ("warming up"), and is ready once it serves and has joined.
 */
public final class Readiness implements Supplier<String> {
  private volatile String notReadyBecause;

  public Readiness(String initially) {
    this.notReadyBecause = initially;
  }

  /** Not ready, for this reason. */
  public void notReady(String because) {
    this.notReadyBecause = because;
  }

  public void ready() {
    this.notReadyBecause = null;
  }

  /** Why it is not ready, or null once it is. */
  @Override
  public String get() {
    return notReadyBecause;
  }
}
