package io.vmd.protocol;

/** What a server reports of its memory: the basis of load-aware placement. */
public record Availability(long capacityBytes, long usedBytes, long freeBytes, long pages) {
  public static final int ENCODED_SIZE = 32;
}
