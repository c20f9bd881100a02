package io.vmd.migration.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * QEMU before 9.0 loses guest writes in pre-copy under TCG when a RAM block's length is a multiple of
 * 256 KiB: the dirty-bitmap sync then takes a word-at-a-time fast path that clears dirty bits without
 * re-arming TCG's TLB_NOTDIRTY, so stores through TLB entries that are already writable go unmarked
 * and the destination gets stale pages (upstream fix 03bfc2188f06, QEMU 9.0). Guest RAM of any other
 * length takes the per-page path, which is correct. VMD therefore sizes guest RAM 8 KiB short of such a
 * multiple on affected QEMUs, and allows pre-copy under TCG only where that holds.
 */
public final class TcgDirtyTracking {
  private static final Logger LOG = LoggerFactory.getLogger(TcgDirtyTracking.class);
  /** Bytes one 64-bit word of the dirty bitmap covers: 64 pages of 4 KiB. */
  static final long BITMAP_WORD_BYTES = 64 * 4096;
  /** What guest RAM gives up to leave the fast path: two pages (one would do; two keep it 8 KiB-aligned). */
  static final long SHORTFALL = 8 << 10;
  private static final Pattern VERSION = Pattern.compile("version (\\d+)\\.(\\d+)");
  private static volatile int installedMajor = -1;

  private TcgDirtyTracking() {}

  /** Whether QEMU {@code major} has the bug. */
  static boolean affected(int major) {
    return major < 9;
  }

  /**
   * The guest RAM to give QEMU {@code major} for {@code requested} bytes under {@code accel}: the same,
   * unless it may run under TCG on an affected QEMU and is a multiple of 256 KiB; then 8 KiB less.
   */
  static long guestRam(long requested, String accel, int major) {
    boolean mayEmulate = accel.contains("tcg");
    return mayEmulate && affected(major) && requested % BITMAP_WORD_BYTES == 0 ? requested - SHORTFALL : requested;
  }

  /** {@link #guestRam(long, String, int)} for the qemu-system-x86_64 on PATH. */
  public static long guestRam(long requested, String accel) {
    long ram = guestRam(requested, accel, installedMajor());
    if (ram != requested) {
      LOG.info("guest RAM {} KiB instead of {} KiB: QEMU {} under TCG loses writes in pre-copy at multiples of "
          + "256 KiB (fixed in 9.0)", ram >> 10, requested >> 10, installedMajor());
    }
    return ram;
  }

  /** The major version of the qemu-system-x86_64 on PATH (0 when it cannot be told: assume affected). */
  static int installedMajor() {
    int major = installedMajor;
    if (major < 0) {
      major = 0;
      try {
        Process p = new ProcessBuilder("qemu-system-x86_64", "--version").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(10, TimeUnit.SECONDS);
        Matcher m = VERSION.matcher(out);
        if (m.find()) {
          major = Integer.parseInt(m.group(1));
        }
      } catch (IOException e) {
        // not installed: QemuVm.start says so when it runs it
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      installedMajor = major;
    }
    return major;
  }

  /**
   * Why pre-copy of the guest behind {@code qmp} would lose writes, or null when it is safe: it runs
   * under KVM, or on a fixed QEMU, or its RAM is not a multiple of 256 KiB.
   */
  static String preCopyHazard(Qmp qmp) throws QmpException {
    Duration t = Duration.ofSeconds(10);
    if (!QemuMigration.emulated(qmp)) {
      return null;
    }
    JsonNode v = qmp.call("query-version", null, t).path("qemu");
    int major = v.path("major").asInt();
    if (!affected(major)) {
      return null;
    }
    long ram = qmp.call("query-memory-size-summary", null, t).path("base-memory").asLong();
    if (ram % BITMAP_WORD_BYTES != 0) {
      return null;
    }
    return "QEMU " + major + "." + v.path("minor").asInt() + " under TCG loses guest writes in pre-copy when guest "
        + "RAM is a multiple of 256 KiB, as this guest's " + (ram >> 10) + " KiB is (fixed in QEMU 9.0); start it "
        + "with vmd vm start, which sizes RAM around it, or use post-copy";
  }
}
