package io.vmd.bench.migration;

import io.vmd.bench.plot.LinePlot;
import io.vmd.client.VmdClient;
import io.vmd.migration.engine.MigrationOptions;
import io.vmd.migration.experiment.MigrationExperiment;
import io.vmd.migration.experiment.MigrationExperiment.Outcome;
import io.vmd.migration.guest.DirtyRateWorkload;
import io.vmd.migration.model.MigrationModel;
import io.vmd.migration.model.Policy;
import java.io.PrintStream;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The migration-time model against the engine, over a grid of working sets W and dirty rates d (the
 * second paper's Fig. 5 and 6): a 32 MiB guest running the dirty-rate program on a 200 Mbit/s link, so
 * that a full round takes about 1.3 s and the fastest dirty rate outruns the link. Pre- and post-copy
 * run on a guest with nothing swapped (the paper's model has no swap); Agile on one 55 % resident.
 */
final class ModelValidation {
  static final int PAGES = 8192;
  static final double LINK = 25e6;
  static final double[] WSS_SHARES = {0.125, 0.25, 0.5};
  static final double[] DIRTY_RATES = {0, 1000, 3000, 6000};
  static final Policy[] POLICIES = {Policy.XEN_PRE_COPY, Policy.POST_COPY, Policy.AGILE};

  record Point(Policy policy, int wss, double dirtyRate, double measured, double estimated) {
    double error() {
      return Math.abs(estimated - measured) / measured;
    }
  }

  private final VmdClient source;
  private final VmdClient destination;
  private final MigrationBench.Options o;
  private final PrintStream out;
  private final PrintStream progress;

  ModelValidation(VmdClient source, VmdClient destination, MigrationBench.Options o, PrintStream out,
      PrintStream progress) {
    this.source = source;
    this.destination = destination;
    this.o = o;
    this.out = out;
    this.progress = progress;
  }

  List<Point> run() throws Exception {
    List<Point> points = new ArrayList<>();
    int n = 0;
    for (Policy p : POLICIES) {
      int resident = p == Policy.AGILE ? PAGES * 55 / 100 : PAGES;
      for (double share : WSS_SHARES) {
        int wss = (int) (PAGES * share);
        for (double d : DIRTY_RATES) {
          progress.printf(Locale.ROOT, "[model] %s W=%d pages d=%.0f pages/s%n", p.label(), wss, d);
          MigrationExperiment.Setup s = new MigrationExperiment.Setup("model" + n++, PAGES, resident,
              Duration.ofMillis(600), Duration.ofMillis(300),
              new MigrationOptions(p, LINK, Duration.ofMillis(300), 8, Duration.ofSeconds(60)));
          Outcome r = MigrationExperiment.run(source, destination, s,
              pages -> new DirtyRateWorkload(pages, pages - wss, wss, d, 0, o.seed()));
          if (!r.badPages().isEmpty()) {
            throw new IllegalStateException("model grid: pages differ after " + p.label());
          }
          MigrationModel.Inputs in = MigrationBench.inputs((long) PAGES * 4096, (long) wss * 4096, d, LINK,
              (long) resident * 4096);
          points.add(new Point(p, wss, d, r.report().totalSeconds(), MigrationModel.estimate(p, in).seconds()));
        }
      }
    }
    print(points);
    if (o.modelPlot() != null) {
      Files.writeString(o.modelPlot(), plot(points));
      progress.println("wrote " + o.modelPlot());
    }
    return points;
  }

  private void print(List<Point> points) {
    out.printf(Locale.ROOT, "%nModel vs measured: %d-page guest (%d MiB), %.0f Mbit/s link%n", PAGES, PAGES / 256,
        LINK * 8 / 1e6);
    out.printf(Locale.ROOT, "  %-16s %8s %10s %12s %11s %8s%n", "policy", "W pages", "d pages/s", "measured s",
        "model s", "error");
    for (Point p : points) {
      out.printf(Locale.ROOT, "  %-16s %8d %10.0f %12.2f %11.2f %7.0f%%%n", p.policy().label(), p.wss(), p.dirtyRate(),
          p.measured(), p.estimated(), p.error() * 100);
    }
    for (Policy pol : POLICIES) {
      double sum = 0;
      double max = 0;
      int k = 0;
      for (Point p : points) {
        if (p.policy() == pol) {
          sum += p.error();
          max = Math.max(max, p.error());
          k++;
        }
      }
      out.printf(Locale.ROOT, "  %s: mean error %.0f %%, largest %.0f %%%n", pol.label(), 100 * sum / k, 100 * max);
    }
    out.flush();
  }

  private static String plot(List<Point> points) {
    List<LinePlot.Panel> panels = new ArrayList<>();
    for (Policy pol : POLICIES) {
      List<LinePlot.Series> series = new ArrayList<>();
      for (int c = 0; c < WSS_SHARES.length; c++) {
        int wss = (int) (PAGES * WSS_SHARES[c]);
        double[] x = DIRTY_RATES.clone();
        double[] model = new double[x.length];
        double[] measured = new double[x.length];
        for (int i = 0; i < x.length; i++) {
          for (Point p : points) {
            if (p.policy() == pol && p.wss() == wss && p.dirtyRate() == x[i]) {
              model[i] = p.estimated();
              measured[i] = p.measured();
            }
          }
        }
        series.add(new LinePlot.Series("model W=" + wss, x, model, false, c));
        series.add(new LinePlot.Series("measured W=" + wss, x, measured, true, c));
      }
      panels.add(new LinePlot.Panel(pol.label() + ": estimated and measured time", "dirty rate (pages/s)",
          "migration time (s)", series, List.of()));
    }
    return LinePlot.svg(panels);
  }
}
