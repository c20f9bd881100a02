package io.vmd.protocol;

/**
 * A namespace as every server knows it: the per-VM swap address space.
 *
 * @param id cluster-wide id, 1..{@link #MAX_ID}
 * @param name unique name, the NBD export name
 * @param sizeBytes size in bytes (a multiple of the page size)
 * @param replicas copies of each page
 * @param epoch the current writer's epoch; writes with an older one are refused
 */
public record NamespaceRecord(int id, String name, long sizeBytes, int replicas, long epoch) {
  /** Ids fit in 24 bits so that (id, page index) packs into one long store key. */
  public static final int MAX_ID = (1 << 24) - 1;

  public NamespaceRecord {
    if (id < 1 || id > MAX_ID) {
      throw new IllegalArgumentException("namespace id " + id + " outside 1.." + MAX_ID);
    }
    if (!validName(name)) {
      throw new IllegalArgumentException(
          "namespace name '" + name + "': use 1-64 characters of letters, digits, '.', '_' or '-'");
    }
    if (sizeBytes < Pages.PAGE_SIZE || sizeBytes % Pages.PAGE_SIZE != 0) {
      throw new IllegalArgumentException(
          "namespace size " + sizeBytes + " must be a positive multiple of " + Pages.PAGE_SIZE);
    }
    if (sizeBytes > Pages.MAX_NAMESPACE_BYTES) {
      throw new IllegalArgumentException("namespace size " + sizeBytes + " is over the largest, "
          + Pages.MAX_NAMESPACE_BYTES + " bytes (256 TiB)");
    }
    if (replicas < 1 || replicas > 8) {
      throw new IllegalArgumentException("replica count " + replicas + " outside 1..8");
    }
    if (epoch < 0) {
      throw new IllegalArgumentException("negative epoch");
    }
  }

  public static boolean validName(String name) {
    return name != null && name.matches("[A-Za-z0-9._-]{1,64}");
  }

  public long pages() {
    return sizeBytes / Pages.PAGE_SIZE;
  }

  public NamespaceRecord withEpoch(long newEpoch) {
    return new NamespaceRecord(id, name, sizeBytes, replicas, newEpoch);
  }
}
