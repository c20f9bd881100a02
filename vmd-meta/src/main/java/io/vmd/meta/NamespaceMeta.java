package io.vmd.meta;

import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Pages;
import java.util.Arrays;
import java.util.List;

/**
 * A namespace as the control plane holds it.
 *
 * @param id never reused, even after the namespace is deleted
 * @param name unique among live namespaces
 * @param sizeBytes size
 * @param replicas copies of each page
 * @param epoch changes with every transfer of ownership; servers take writes only at the current one
 * @param owner the client or gateway that may write, or "" for none
 * @param leaseUntilMillis the owner's lease, in the control plane's clock
 * @param servers slots of every server that may hold pages of it (ascending): a page that none of
 *     them holds was never written
 * @param wrappedKey the namespace's page key, encrypted under the cluster's seal key (which servers
 *     never hold); empty for a namespace whose pages are not sealed
 * @param grants the NBD clients (certificate names) a gateway that verifies its peers lets open it
 */
public record NamespaceMeta(int id, String name, long sizeBytes, int replicas, long epoch, String owner,
    long leaseUntilMillis, int[] servers, byte[] wrappedKey, List<String> grants) {
  /** Most NBD clients one namespace may be granted to. */
  public static final int MAX_GRANTS = 64;
  /** Most bytes of a wrapped key: a 12-byte nonce, a 32-byte key and a 16-byte tag, with room to spare. */
  public static final int MAX_WRAPPED_KEY = 128;

  public NamespaceMeta {
    servers = servers.clone();
    Arrays.sort(servers);
    wrappedKey = wrappedKey.clone();
    grants = List.copyOf(grants);
  }

  public NamespaceMeta(int id, String name, long sizeBytes, int replicas, long epoch, String owner,
      long leaseUntilMillis, int[] servers) {
    this(id, name, sizeBytes, replicas, epoch, owner, leaseUntilMillis, servers, new byte[0], List.of());
  }

  /** Whether the NBD client named {@code client} (its certificate's name) may open it. */
  public boolean grantedTo(String client) {
    return grants.contains(client);
  }

  /** Whether the namespace's pages are sealed (encrypted and authenticated by its writers). */
  public boolean sealed() {
    return wrappedKey.length > 0;
  }

  @Override
  public byte[] wrappedKey() {
    return wrappedKey.clone();
  }

  /** The record servers and the data path use. */
  public NamespaceRecord record() {
    return new NamespaceRecord(id, name, sizeBytes, replicas, epoch);
  }

  public long pages() {
    return sizeBytes / Pages.PAGE_SIZE;
  }

  public boolean hasOwner() {
    return !owner.isEmpty();
  }

  /** Whether the owner's lease runs at {@code nowMillis} (the control plane's clock). */
  public boolean ownedAt(long nowMillis) {
    return hasOwner() && leaseUntilMillis > nowMillis;
  }

  public boolean holds(int slot) {
    return Arrays.binarySearch(servers, slot) >= 0;
  }

  @Override
  public int[] servers() {
    return servers.clone();
  }

  NamespaceMeta with(long newEpoch, String newOwner, long lease, int[] newServers) {
    return new NamespaceMeta(id, name, sizeBytes, replicas, newEpoch, newOwner, lease, newServers, wrappedKey, grants);
  }

  NamespaceMeta withGrants(List<String> newGrants) {
    return new NamespaceMeta(id, name, sizeBytes, replicas, epoch, owner, leaseUntilMillis, servers, wrappedKey,
        newGrants);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NamespaceMeta n && id == n.id && name.equals(n.name) && sizeBytes == n.sizeBytes
        && replicas == n.replicas && epoch == n.epoch && owner.equals(n.owner)
        && leaseUntilMillis == n.leaseUntilMillis && Arrays.equals(servers, n.servers)
        && Arrays.equals(wrappedKey, n.wrappedKey) && grants.equals(n.grants);
  }

  @Override
  public int hashCode() {
    return Integer.hashCode(id) * 31 + Long.hashCode(epoch);
  }

  @Override
  public String toString() {
    return "NamespaceMeta[" + id + " '" + name + "' " + sizeBytes + " B R=" + replicas + " epoch " + epoch
        + " owner '" + owner + "' until " + leaseUntilMillis + " servers " + Arrays.toString(servers)
        + (sealed() ? " sealed" : "") + "]";
  }
}
