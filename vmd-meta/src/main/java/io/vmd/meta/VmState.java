package io.vmd.meta;

/** Where a VM is in its life, as its host's agent records it. (The log stores it by position: add new states last.) */
public enum VmState {
  /** Its QEMU is being started, or waits for an incoming migration. */
  STARTING,
  RUNNING,
  /** Being migrated to {@link VmMeta#target()}. */
  MIGRATING,
  /** Its QEMU was stopped; the record stays until removed. */
  STOPPED,
  /** Its host's agent lost it (QEMU died, or a post-copy source died): never resumed a second time. */
  LOST
}
