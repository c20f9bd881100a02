package io.vmd.meta;

/**
 * A VM as the control plane records it: which host runs it, on which namespace.
 *
 * @param name unique in the cluster
 * @param host the host whose agent runs it (while migrating: the source)
 * @param namespace its swap namespace
 * @param memoryBytes guest RAM
 * @param state where it is in its life
 * @param target while {@link VmState#MIGRATING}: the destination host; otherwise empty
 * @param generation grows with every change of the record; a change names the generation it read, so
 *     two agents never overwrite each other's news
 * @param updatedMillis when it last changed, by the control plane's clock
 */
public record VmMeta(String name, String host, String namespace, long memoryBytes, VmState state, String target,
    long generation, long updatedMillis) {
  public VmMeta {
    target = target == null ? "" : target;
  }

  /** A record to write: the control plane sets generation and time. */
  public static VmMeta of(String name, String host, String namespace, long memoryBytes, VmState state, String target) {
    return new VmMeta(name, host, namespace, memoryBytes, state, target, 0, 0);
  }

  public VmMeta with(VmState s, String newHost, String newTarget) {
    return new VmMeta(name, newHost, namespace, memoryBytes, s, newTarget, generation, updatedMillis);
  }
}
