package io.vmd.migration.swap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/** Test support: a swap file switched on for this host (needs root) and the pagemap probe program. */
public final class SwapFile implements AutoCloseable {
  private final Path file;

  private SwapFile(Path file) {
    this.file = file;
  }

  /** A {@code mib} MiB swap file under target/, switched on. */
  public static SwapFile on(String name, int mib) throws Exception {
    Path file = Path.of("target").resolve(name).toAbsolutePath();
    run(List.of("swapoff", file.toString()), true);
    // Written, not fallocated: swap writes bypass the filesystem, whose unwritten extents read as zeros.
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
      for (int i = 0; i < mib; i++) {
        zeros.clear();
        ch.write(zeros);
      }
    }
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
    run(List.of("mkswap", file.toString()), false);
    run(List.of("swapon", file.toString()), false);
    return new SwapFile(file);
  }

  public Path path() {
    return file;
  }

  /** Compiles src/test/c/pagemap_probe.c into target/ once; returns the program. */
  public static synchronized Path probe() throws Exception {
    Path probe = Path.of("target", "pagemap_probe").toAbsolutePath();
    Path source = Path.of("src/test/c/pagemap_probe.c");
    if (!Files.exists(probe) || Files.getLastModifiedTime(probe).compareTo(Files.getLastModifiedTime(source)) < 0) {
      run(List.of("gcc", "-O2", "-o", probe.toString(), source.toString()), false);
    }
    return probe;
  }

  @Override
  public void close() throws Exception {
    run(List.of("swapoff", file.toString()), true);
    Files.deleteIfExists(file);
  }

  static void run(List<String> cmd, boolean mayFail) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int rc = p.waitFor();
    if (rc != 0 && !mayFail) {
      throw new IllegalStateException(String.join(" ", cmd) + " failed (" + rc + "): " + out
          + (cmd.get(0).startsWith("swap") ? " (enabling a swap file needs root)" : ""));
    }
  }
}
