package io.vmd.migration.model;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Estimates migration time and data per policy, after Mardan, Koto and Kono ("To pre-copy or to
 * post-copy", §4) with a KVM pre-copy variant and an Agile model added.
 *
 * <ul>
 *   <li><b>Xen pre-copy</b>: t1 = M/B, ti = min(W, p·d·t(i−1))/B; the live rounds stop when the total
 *       sent exceeds 3M, fewer than 50 pages remain, or after 30 rounds; then the VM stops and what
 *       remains, min(W, p·d·tN), goes in the stop-and-copy (the downtime). The paper's T_pre = Σ ti; the
 *       stop-and-copy round is added here because an engine has to send it (it is under 50 pages
 *       whenever the second condition ended the rounds).</li>
 *   <li><b>KVM pre-copy</b>: the same rounds, stopping as soon as the remaining pages would go within
 *       the allowed downtime; when the dirty rate keeps the remainder above it for 1000 rounds the
 *       migration does not converge (the paper: "KVM pre-copy fails when the workload is heavy").</li>
 *   <li><b>Post-copy</b>: T = M/B; every page moves once, the downtime is the state only.</li>
 *   <li><b>Agile</b>: one live round of the resident set R plus an 8-byte offset per swapped page,
 *       t1 = (R + 8·(M − R)/p)/B, then the pages dirtied meanwhile, min(W, p·d·t1), are pushed after
 *       resume: T = t1 + min(W, p·d·t1)/B. Swapped pages stay in the VMD and never cross.</li>
 * </ul>
 *
 * Sizes in bytes, d in pages per second, B in bytes per second.
 */
public final class MigrationModel {
  public static final int PAGE = 4096;
  static final int XEN_MAX_ROUNDS = 30;
  static final int XEN_MIN_PAGES = 50;
  static final int KVM_MAX_ROUNDS = 1000;

  /** The workload and link a migration runs on. */
  public record Inputs(long memoryBytes, long wssBytes, double dirtyPagesPerSecond, double bytesPerSecond,
      long residentBytes, double maxDowntimeSeconds) {
    public Inputs {
      if (memoryBytes <= 0 || bytesPerSecond <= 0) {
        throw new IllegalArgumentException("memory and bandwidth must be positive");
      }
      if (wssBytes < 0 || wssBytes > memoryBytes) {
        throw new IllegalArgumentException("the working set must be between 0 and the memory size");
      }
      if (residentBytes < 0 || residentBytes > memoryBytes) {
        throw new IllegalArgumentException("the resident set must be between 0 and the memory size");
      }
      if (dirtyPagesPerSecond < 0 || maxDowntimeSeconds <= 0) {
        throw new IllegalArgumentException("dirty rate must be ≥ 0 and the allowed downtime > 0");
      }
    }

    /** A VM with nothing swapped out (the resident set is all of memory), KVM's default 300 ms downtime. */
    public static Inputs of(long memory, long wss, double dirtyRate, double bandwidth) {
      return new Inputs(memory, wss, dirtyRate, bandwidth, memory, 0.3);
    }

    public Inputs withResident(long resident) {
      return new Inputs(memoryBytes, wssBytes, dirtyPagesPerSecond, bytesPerSecond, resident, maxDowntimeSeconds);
    }

    public Inputs withMaxDowntime(double seconds) {
      return new Inputs(memoryBytes, wssBytes, dirtyPagesPerSecond, bytesPerSecond, residentBytes, seconds);
    }
  }

  /** One policy's estimate; {@code converged} is false when it never reaches its stop condition. */
  public record Estimate(Policy policy, double seconds, double bytes, double downtimeSeconds, int rounds,
      boolean converged) {}

  private MigrationModel() {}

  public static Estimate xenPreCopy(Inputs in) {
    double b = in.bytesPerSecond();
    double t = in.memoryBytes() / b;
    double total = t;
    double sent = in.memoryBytes();
    int rounds = 1;
    double remaining = dirtiedDuring(in, t);
    while (sent <= 3.0 * in.memoryBytes() && remaining >= XEN_MIN_PAGES * (double) PAGE && rounds < XEN_MAX_ROUNDS) {
      t = remaining / b;
      total += t;
      sent += remaining;
      rounds++;
      remaining = dirtiedDuring(in, t);
    }
    double downtime = remaining / b;
    return new Estimate(Policy.XEN_PRE_COPY, total + downtime, sent + remaining, downtime, rounds, true);
  }

  public static Estimate kvmPreCopy(Inputs in) {
    double b = in.bytesPerSecond();
    double t = in.memoryBytes() / b;
    double total = t;
    double sent = in.memoryBytes();
    int rounds = 1;
    double remaining = dirtiedDuring(in, t);
    while (remaining / b > in.maxDowntimeSeconds() && rounds < KVM_MAX_ROUNDS) {
      t = remaining / b;
      total += t;
      sent += remaining;
      rounds++;
      remaining = dirtiedDuring(in, t);
    }
    double downtime = remaining / b;
    boolean converged = downtime <= in.maxDowntimeSeconds();
    return new Estimate(Policy.KVM_PRE_COPY, total + downtime, sent + remaining, downtime, rounds, converged);
  }

  public static Estimate postCopy(Inputs in) {
    return new Estimate(Policy.POST_COPY, in.memoryBytes() / in.bytesPerSecond(), in.memoryBytes(), 0, 1, true);
  }

  public static Estimate agile(Inputs in) {
    double b = in.bytesPerSecond();
    double offsets = 8.0 * (in.memoryBytes() - in.residentBytes()) / PAGE;
    double live = in.residentBytes() + offsets;
    double t1 = live / b;
    double pushed = dirtiedDuring(in, t1);
    return new Estimate(Policy.AGILE, t1 + pushed / b, live + pushed, 0, 1, true);
  }

  /** Bytes of the working set dirtied during {@code seconds}: min(W, p·d·t). */
  static double dirtiedDuring(Inputs in, double seconds) {
    return Math.min((double) in.wssBytes(), PAGE * in.dirtyPagesPerSecond() * seconds);
  }

  public static Estimate estimate(Policy policy, Inputs in) {
    return switch (policy) {
      case XEN_PRE_COPY -> xenPreCopy(in);
      case KVM_PRE_COPY -> kvmPreCopy(in);
      case POST_COPY -> postCopy(in);
      case AGILE -> agile(in);
    };
  }

  /** Every policy's estimate, fastest converging first (ties: less data first). */
  public static List<Estimate> ranked(Inputs in) {
    List<Estimate> all = new ArrayList<>();
    for (Policy p : Policy.values()) {
      all.add(estimate(p, in));
    }
    all.sort(Comparator.comparing((Estimate e) -> !e.converged()).thenComparingDouble(Estimate::seconds)
        .thenComparingDouble(Estimate::bytes));
    return all;
  }
}
