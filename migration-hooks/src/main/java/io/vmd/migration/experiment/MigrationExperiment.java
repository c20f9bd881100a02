package io.vmd.migration.experiment;

import io.vmd.client.Namespace;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.HostPort;
import io.vmd.migration.engine.MigrationDestination;
import io.vmd.migration.engine.MigrationOptions;
import io.vmd.migration.engine.MigrationReport;
import io.vmd.migration.engine.MigrationSource;
import io.vmd.migration.guest.EmulatedGuest;
import io.vmd.migration.guest.Workload;
import io.vmd.migration.model.Policy;
import io.vmd.migration.swap.SwapPageSource;
import io.vmd.protocol.ErrorCode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.HdrHistogram.Histogram;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One emulated VM migrated once, end to end: its swap namespace is created in the cluster, the guest
 * boots with its cold pages swapped there, its program runs until warm, a destination manager listens
 * (its own cluster client: another host), the source migrates it, the program runs on at the
 * destination, then every page of the destination guest is checked against the versions the program
 * wrote, and the source's old handle on the swap namespace is checked to be fenced.
 */
public final class MigrationExperiment {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationExperiment.class);

  /**
   * @param pages guest memory in pages
   * @param residentPages its reservation: pages kept in memory, the rest swapped to the VMD
   * @param warmUp how long the program runs before the migration (its baseline throughput)
   * @param after how long it runs at the destination before the check
   * @param coRunners other guests of the same shape that keep running on the source host meanwhile
   */
  public record Setup(String name, int pages, int residentPages, Duration warmUp, Duration after,
      MigrationOptions options, int coRunners) {
    public Setup(String name, int pages, int residentPages, Duration warmUp, Duration after, MigrationOptions options) {
      this(name, pages, residentPages, warmUp, after, options, 0);
    }
  }

  /** The migration's report, the program's throughput around it and the checks' results. */
  public record Outcome(MigrationReport report, double[] throughput, int migrationStartBucket, int migrationEndBucket,
      double baselineOpsPerSecond, double duringOpsPerSecond, double recoverySeconds, List<Integer> badPages,
      long corruptReads, Boolean sourceFenced, String workload, double allGuestsDuringOpsPerSecond) {}

  private MigrationExperiment() {}

  /**
   * The source host's guests read swap with the same read-ahead as the destination (a kernel's
   * page-cluster: 3 reads 8 pages), so pre- and post-copy, which bring swapped pages back in at the
   * source, are not handicapped by one synchronous read per page.
   */
  private static EmulatedGuest withReadAhead(EmulatedGuest g, Namespace swap, int pages) {
    g.attachSwap(swap, SwapPageSource.over(swap, pages));
    return g;
  }

  public static Outcome run(VmdClient sourceHost, VmdClient destinationHost, Setup s, IntFunction<Workload> program)
      throws Exception {
    String swapName = s.name() + "-swap";
    sourceHost.namespaces().create(swapName, (long) s.pages() * 4096, 1);
    Namespace sourceSwap = sourceHost.attach(swapName, true);
    EmulatedGuest guest = withReadAhead(EmulatedGuest.booted(s.pages(), s.residentPages(), sourceSwap), sourceSwap,
        s.options().readAheadPages());
    Workload w = program.apply(s.pages());
    EmulatedGuest arrived = null;
    List<EmulatedGuest> others = new ArrayList<>();
    List<Workload> otherPrograms = new ArrayList<>();
    try (MigrationDestination dest = MigrationDestination.listen(new HostPort("127.0.0.1", 0), destinationHost,
        s.options().readAheadPages(), s.options().faultTimeout(), w::resume)) {
      for (int i = 0; i < s.coRunners(); i++) {
        String n = s.name() + "-co" + i + "-swap";
        sourceHost.namespaces().create(n, (long) s.pages() * 4096, 1);
        Namespace coSwap = sourceHost.attach(n, true);
        EmulatedGuest g = withReadAhead(EmulatedGuest.booted(s.pages(), s.residentPages(), coSwap), coSwap,
            s.options().readAheadPages());
        others.add(g);
        Workload ow = program.apply(s.pages());
        otherPrograms.add(ow);
        ow.start(g, s.name() + "-co" + i);
      }
      w.start(guest, s.name() + "-program");
      Thread.sleep(s.warmUp().toMillis());
      failIfBroken(w);
      MigrationSource.Result src = MigrationSource.migrate(guest, w, swapName, s.residentPages(), dest.address(),
          s.options());
      arrived = dest.arrived().get();
      Thread.sleep(s.after().toMillis());
      double[] t = w.throughput();
      w.pause();
      failIfBroken(w);
      List<Integer> bad = arrived.verify(w.versions());
      // Only Agile hands the swap namespace over; the others leave the source's to the source.
      Boolean fenced = s.options().policy() == Policy.AGILE ? fenced(sourceSwap) : null;
      Histogram sf = dest.sourceFaultLatency();
      Histogram vf = arrived.swapInLatency();
      MigrationReport report = new MigrationReport(src.policy(), (src.endNanos() - src.startNanos()) / 1e9,
          (src.resumedNanos() - src.pausedNanos()) / 1e9, src.rounds(), src.fullPageBytes(), src.offsetBytes(),
          src.pushedBytes(), src.demandBytes(), dest.faultsFromSource(), dest.faultsFromVmd(arrived),
          micros(sf, 50), micros(sf, 99), micros(vf, 50), micros(vf, 99), src.startNanos(), src.resumedNanos(),
          src.endNanos());
      int bucketNanos = Workload.BUCKET_MILLIS * 1_000_000;
      int startBucket = (int) ((src.startNanos() - w.startNanos()) / bucketNanos);
      int endBucket = (int) Math.min(t.length, (src.endNanos() - w.startNanos()) / bucketNanos + 1);
      double baseline = mean(t, Math.max(1, startBucket - (int) (s.warmUp().toMillis() / 2 / Workload.BUCKET_MILLIS)),
          startBucket);
      double during = mean(t, startBucket, endBucket);
      double all = during;
      for (Workload ow : otherPrograms) {
        double[] ot = ow.throughput(); // still running: every bucket up to the migration's end is complete
        int shift = (int) ((ow.startNanos() - w.startNanos()) / bucketNanos);
        all += mean(ot, Math.max(0, startBucket - shift), Math.min(ot.length, endBucket - shift));
        failIfBroken(ow);
      }
      all /= 1 + otherPrograms.size();
      return new Outcome(report, t, startBucket, endBucket, baseline, during, recovery(t, startBucket, baseline),
          bad, w.corruptReads(), fenced, w.describe(), all);
    } finally {
      for (Workload ow : otherPrograms) {
        ow.close();
      }
      for (int i = 0; i < others.size(); i++) {
        others.get(i).close();
        sourceHost.namespaces().delete(s.name() + "-co" + i + "-swap");
      }
      w.close();
      guest.close();
      if (arrived != null) {
        arrived.close();
      }
      // The VM's swap namespace belongs to the destination after an Agile hand-off, else to the source.
      boolean agile = s.options().policy() == Policy.AGILE;
      (agile ? destinationHost : sourceHost).namespaces().delete(swapName);
      if (!agile) {
        try {
          destinationHost.namespaces().delete(swapName + "-in");
        } catch (VmdException e) {
          LOG.debug("no destination swap namespace to delete: {}", e.getMessage());
        }
      }
    }
  }

  private static void failIfBroken(Workload w) throws VmdException {
    if (w.failure() != null) {
      throw new VmdException(ErrorCode.INTERNAL, "the guest's program failed: " + w.failure(), w.failure());
    }
  }

  /** The source's handle, attached before the migration, must now be refused: the destination owns it. */
  private static boolean fenced(Namespace oldWriter) {
    try {
      oldWriter.writeSync(0, new byte[4096]);
      return false;
    } catch (VmdException e) {
      return e.code() == ErrorCode.STALE_EPOCH;
    }
  }

  private static double micros(Histogram h, double percentile) {
    return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(percentile) / 1000.0;
  }

  static double mean(double[] t, int from, int to) {
    if (to <= from) {
      return 0;
    }
    double s = 0;
    for (int i = from; i < to; i++) {
      s += t[i];
    }
    return s / (to - from);
  }

  /**
   * Seconds from the migration's start until the program's throughput, as a 1-second moving average,
   * is back at 90 % of its baseline for good (0 when it never fell below).
   */
  static double recovery(double[] t, int start, double baseline) {
    int window = 1000 / Workload.BUCKET_MILLIS;
    int lastLow = -1;
    for (int i = start; i + window <= t.length; i++) {
      if (mean(t, i, i + window) < 0.9 * baseline) {
        lastLow = i;
      }
    }
    return lastLow < 0 ? 0 : (lastLow + window - start) * Workload.BUCKET_MILLIS / 1000.0;
  }
}
