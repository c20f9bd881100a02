package io.vmd.migration.swap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/**
 * Test support: a swap file switched on for this host (needs root) and the pagemap probe program. Tests
 * run in parallel forks, and the kernel spreads swap over every active file, so a test holds the
 * host's swap lock (a file lock, across JVMs) from {@link #on} to {@link #close}.
 */
public final class SwapFile implements AutoCloseable {
  private static final Path LOCK = Path.of(System.getProperty("java.io.tmpdir"), "vmd-test-swap.lock");
  private final Path file;
  private final FileChannel lockFile;
  private final FileLock lock;

  private SwapFile(Path file, FileChannel lockFile, FileLock lock) {
    this.file = file;
    this.lockFile = lockFile;
    this.lock = lock;
  }

  /** A {@code mib} MiB swap file under target/, switched on once no other test's is. */
  public static SwapFile on(String name, int mib) throws Exception {
    FileChannel lockFile = FileChannel.open(LOCK, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    FileLock lock = lockFile.lock();
    try {
      return new SwapFile(switchOn(name, mib), lockFile, lock);
    } catch (Exception | Error e) {
      lock.release();
      lockFile.close();
      throw e;
    }
  }

  private static Path switchOn(String name, int mib) throws Exception {
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
    return file;
  }

  public Path path() {
    return file;
  }

  /** Compiles src/test/c/pagemap_probe.c into target/ once; returns the program. */
  public static synchronized Path probe() throws Exception {
    Path probe = Path.of("target", "pagemap_probe").toAbsolutePath();
    Path source = Path.of("src/test/c/pagemap_probe.c");
    if (!Files.exists(probe) || Files.getLastModifiedTime(probe).compareTo(Files.getLastModifiedTime(source)) < 0) {
      // Built aside and renamed: another fork may be running the previous build.
      Path built = Files.createTempFile(probe.getParent(), "pagemap_probe", ".tmp");
      run(List.of("gcc", "-O2", "-o", built.toString(), source.toString()), false);
      Files.move(built, probe, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
    return probe;
  }

  @Override
  public void close() throws Exception {
    try {
      run(List.of("swapoff", file.toString()), true);
      Files.deleteIfExists(file);
    } finally {
      lock.release();
      lockFile.close();
    }
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
