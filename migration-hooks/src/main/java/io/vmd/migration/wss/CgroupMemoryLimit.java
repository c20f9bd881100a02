package io.vmd.migration.wss;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A memory cgroup's limit as a VM's reservation: the QEMU process of a VM (or any process) is placed in
 * the cgroup and the kernel keeps its resident memory under the limit by swapping the rest. Works with
 * cgroup v2 ({@code memory.max}) and v1 ({@code memory.limit_in_bytes}), whichever this host mounts.
 */
final class CgroupMemoryLimit implements ReservationActuator, AutoCloseable {
  private static final Path ROOT = Path.of("/sys/fs/cgroup");

  private final Path dir;
  private final Path limitFile;
  private final boolean created;

  private CgroupMemoryLimit(Path dir, Path limitFile, boolean created) {
    this.dir = dir;
    this.limitFile = limitFile;
    this.created = created;
  }

  /** The memory cgroup {@code name} (created when missing) on this host's cgroup hierarchy. */
  public static CgroupMemoryLimit open(String name) throws IOException {
    Path v2 = ROOT.resolve("cgroup.controllers");
    Path dir;
    Path limit;
    if (Files.exists(v2) && Files.readString(v2).contains("memory")) {
      dir = ROOT.resolve(name);
      limit = dir.resolve("memory.max");
    } else if (Files.isDirectory(ROOT.resolve("memory"))) {
      dir = ROOT.resolve("memory").resolve(name);
      limit = dir.resolve("memory.limit_in_bytes");
    } else {
      throw new IOException("no memory cgroup controller mounted under " + ROOT);
    }
    boolean created = false;
    if (!Files.isDirectory(dir)) {
      Files.createDirectory(dir);
      created = true;
    }
    return new CgroupMemoryLimit(dir, limit, created);
  }

  public Path path() {
    return dir;
  }

  /** Moves process {@code pid} into this cgroup. */
  public void add(long pid) throws IOException {
    Files.writeString(dir.resolve("cgroup.procs"), Long.toString(pid), StandardCharsets.US_ASCII);
  }

  @Override
  public long reserve(long bytes) throws IOException {
    long pages = Math.max(1, bytes / 4096);
    Files.writeString(limitFile, Long.toString(pages * 4096), StandardCharsets.US_ASCII);
    return reserved();
  }

  @Override
  public long reserved() throws IOException {
    String v = Files.readString(limitFile, StandardCharsets.US_ASCII).trim();
    return v.equals("max") ? Long.MAX_VALUE : Long.parseLong(v);
  }

  /** Bytes the cgroup's processes use now (memory.current or memory.usage_in_bytes). */
  public long usage() throws IOException {
    Path v2 = dir.resolve("memory.current");
    return Long.parseLong(Files.readString(Files.exists(v2) ? v2 : dir.resolve("memory.usage_in_bytes")).trim());
  }

  /** Removes the cgroup if this opened it by creating it (it must have no processes left). */
  @Override
  public void close() throws IOException {
    if (created) {
      Files.deleteIfExists(dir);
    }
  }
}
