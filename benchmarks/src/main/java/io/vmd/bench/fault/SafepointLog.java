package io.vmd.bench.fault;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The stop-the-world pauses of a JVM under test, from its {@code -Xlog:safepoint} file: every
 * safepoint (a GC's, a deoptimization's, a class redefinition's) stops the event loops alike, so the
 * longest of them is what a request can wait. Read from where the last read stopped, so one
 * measurement window's pauses are told from the next's.
 */
final class SafepointLog {
  private static final Pattern LINE = Pattern.compile("Safepoint \"([^\"]+)\".*?Total: (\\d+) ns");

  private final Path file;
  private long offset;

  SafepointLog(Path file) {
    this.file = file;
  }

  /** The longest pause and how many there were, since the previous call. */
  record Pauses(int count, long maxNanos, String longest) {
    static final Pauses NONE = new Pauses(0, 0, "");

    Pauses max(Pauses other) {
      return new Pauses(count + other.count, Math.max(maxNanos, other.maxNanos),
          other.maxNanos > maxNanos ? other.longest : longest);
    }
  }

  Pauses sinceLastRead() {
    String text;
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
      long length = f.length();
      if (length <= offset) {
        return Pauses.NONE;
      }
      byte[] bytes = new byte[(int) Math.min(length - offset, 64 << 20)];
      f.seek(offset);
      f.readFully(bytes);
      int end = bytes.length;
      while (end > 0 && bytes[end - 1] != '\n') {
        end--; // a line still being written is read next time
      }
      offset += end;
      text = new String(bytes, 0, end, StandardCharsets.UTF_8);
    } catch (IOException notYet) {
      return Pauses.NONE;
    }
    return parse(text);
  }

  static Pauses parse(String text) {
    Pauses p = Pauses.NONE;
    Matcher m = LINE.matcher(text);
    while (m.find()) {
      p = p.max(new Pauses(1, Long.parseLong(m.group(2)), m.group(1)));
    }
    return p;
  }
}
