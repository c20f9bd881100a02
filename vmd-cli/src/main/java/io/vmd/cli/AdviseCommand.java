package io.vmd.cli;

import io.vmd.common.Sizes;
import io.vmd.migration.model.Bandwidth;
import io.vmd.migration.model.MigrationModel;
import io.vmd.migration.model.MigrationModel.Estimate;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(name = "advise", mixinStandardHelpOptions = true,
    description = {
        "Estimate each migration policy's time, data and downtime for a VM and recommend one.",
        "The model: Xen pre-copy with its stop conditions, KVM pre-copy with a downtime limit, post-copy "
            + "M/B, and Agile (the resident set plus the pages dirtied during its single live round)."})
final class AdviseCommand implements Callable<Integer> {
  @ParentCommand Vmd vmd;
  @Spec CommandSpec spec;

  @Option(names = "--memory", required = true, converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "The VM's memory M.")
  long memory;

  @Option(names = "--wss", required = true, converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "Its writable working set W.")
  long wss;

  @Option(names = "--dirty-rate", required = true, paramLabel = "PAGES/S",
      description = "Pages it dirties per second, d.")
  double dirtyRate;

  @Option(names = "--bandwidth", required = true, paramLabel = "RATE",
      description = "Migration bandwidth B: 1Gbit, 100Mbit/s, 125MB/s.")
  String bandwidth;

  @Option(names = "--resident", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "Its resident set R, the rest being swapped to the VMD (default: all of memory).")
  Long resident;

  @Option(names = "--max-downtime", defaultValue = "300ms", converter = Vmd.DurationConverter.class,
      paramLabel = "DURATION", description = "KVM pre-copy's allowed downtime (default: ${DEFAULT-VALUE}).")
  Duration maxDowntime;

  /** One policy's estimate; time, data and downtime are null for a pre-copy that never converges. */
  record PolicyEstimate(String policy, Double timeS, Long data, Double downtimeS, int rounds, boolean converges) {}

  /** vmd advise --json: the recommended policy and every policy's estimate, best first. */
  record Advice(String recommended, List<PolicyEstimate> policies) {}

  @Override
  public Integer call() {
    double b = Bandwidth.parse(bandwidth);
    MigrationModel.Inputs in = new MigrationModel.Inputs(memory, wss, dirtyRate, b,
        resident == null ? memory : resident, maxDowntime.toNanos() / 1e9);
    List<Estimate> ranked = MigrationModel.ranked(in);
    List<PolicyEstimate> rows = new ArrayList<>();
    for (Estimate e : ranked) {
      // A pre-copy that never converges has no time to show: the numbers at its round cap mean nothing.
      rows.add(new PolicyEstimate(e.policy().label(), e.converged() ? round(e.seconds()) : null,
          e.converged() ? (long) e.bytes() : null, e.converged() ? round(e.downtimeSeconds()) : null, e.rounds(),
          e.converged()));
    }
    PrintWriter w = spec.commandLine().getOut();
    if (vmd.json) {
      w.println(Output.write(new Advice(rows.get(0).policy(), rows)));
      w.flush();
      return 0;
    }
    w.printf(Locale.ROOT, "M %s, W %s, d %.0f pages/s (%s/s), B %s, resident %s%n%n", Sizes.format(memory),
        Sizes.format(wss), dirtyRate, Sizes.format((long) (dirtyRate * MigrationModel.PAGE)), Bandwidth.format(b),
        Sizes.format(in.residentBytes()));
    Output.list(w, false, "policies", rows, PolicyEstimate.class, "data");
    Estimate best = ranked.get(0);
    w.printf(Locale.ROOT, "%nrecommended: %s (%.1f s, %s moved%s)%n", best.policy().label(), best.seconds(),
        Sizes.format((long) best.bytes()), best.downtimeSeconds() > 0
            ? String.format(Locale.ROOT, ", %.0f ms down", best.downtimeSeconds() * 1000) : "");
    w.flush();
    return 0;
  }

  private static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }
}
