package io.vmd.migration.model;

/** Migration policies the model and the engine know. */
public enum Policy {
  XEN_PRE_COPY("pre-copy (Xen)"),
  KVM_PRE_COPY("pre-copy (KVM)"),
  POST_COPY("post-copy"),
  AGILE("agile");

  private final String label;

  Policy(String label) {
    this.label = label;
  }

  public String label() {
    return label;
  }
}
