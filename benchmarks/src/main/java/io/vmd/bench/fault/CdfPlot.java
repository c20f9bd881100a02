package io.vmd.bench.fault;

import java.util.List;
import java.util.Locale;
import io.vmd.bench.plot.LinePlot;
import org.HdrHistogram.Histogram;

/** An SVG of latency CDFs: one panel per workload, one line per target, latency on a log axis. */
final class CdfPlot {
  private static final String[] COLORS = {"#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"};
  private static final double[] PERCENTILES = {
    0.1, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100};

  record Series(String target, Histogram histogram) {}

  record Panel(String title, List<Series> series) {}

  static String svg(List<Panel> panels) {
    int w = 560;
    int h = 360;
    StringBuilder sb = LinePlot.document(w * panels.size(), h);
    for (int i = 0; i < panels.size(); i++) {
      panel(sb, panels.get(i), i * w, w, h);
    }
    return sb.append("</svg>\n").toString();
  }

  private static void panel(StringBuilder sb, Panel p, int x0, int w, int h) {
    int left = x0 + 60;
    int right = x0 + w - 20;
    int top = 40;
    int bottom = h - 50;
    double lo = Double.MAX_VALUE;
    double hi = 0;
    for (Series s : p.series()) {
      lo = Math.min(lo, Math.max(1, s.histogram().getMinValue() / 1000.0));
      hi = Math.max(hi, s.histogram().getMaxValue() / 1000.0);
    }
    double logLo = Math.floor(Math.log10(Math.max(1, lo)));
    double logHi = Math.ceil(Math.log10(Math.max(10, hi)));
    sb.append(String.format(Locale.ROOT, "<text x='%d' y='22' font-size='14'>%s</text>%n", left, LinePlot.esc(p.title())));
    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>%n", left, bottom, right, bottom));
    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>%n", left, top, left, bottom));
    for (double d = logLo; d <= logHi; d++) {
      double x = left + (d - logLo) / (logHi - logLo) * (right - left);
      sb.append(String.format(Locale.ROOT, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>%n", x, top, x, bottom));
      sb.append(String.format(Locale.ROOT, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>%n", x, bottom + 16,
          String.format(Locale.ROOT, "%.0f", Math.pow(10, d))));
    }
    sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>latency (µs, log)</text>%n",
        (left + right) / 2, bottom + 36));
    for (int pct = 0; pct <= 100; pct += 25) {
      double y = bottom - pct / 100.0 * (bottom - top);
      sb.append(String.format(Locale.ROOT, "<text x='%d' y='%.1f' text-anchor='end'>%d%%</text>%n", left - 6, y + 4, pct));
    }
    int legend = 0;
    for (Series s : p.series()) {
      String color = COLORS[legend % COLORS.length];
      StringBuilder pts = new StringBuilder();
      for (double pct : PERCENTILES) {
        double us = Math.max(Math.pow(10, logLo), s.histogram().getValueAtPercentile(pct) / 1000.0);
        double x = left + (Math.log10(us) - logLo) / (logHi - logLo) * (right - left);
        double y = bottom - pct / 100.0 * (bottom - top);
        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
      }
      sb.append(String.format(Locale.ROOT, "<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>%n", color, pts));
      sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' fill='%s'>%s</text>%n", right - 150, top + 16 + 16 * legend,
          color, LinePlot.esc(s.target())));
      legend++;
    }
  }
}
