package io.vmd.meta;

/** A hypervisor host's state. (The log stores it by position: add new states last.) */
public enum HostStatus {
  /** Its agent runs VMs and takes new ones and migrations. */
  ACTIVE,
  /** Its VMs are to be moved away; it takes no new ones. */
  DRAINING,
  /** Gone from the cluster; its name may register again. */
  REMOVED
}
