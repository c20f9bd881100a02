package io.vmd.bench.plot;

import java.util.List;
import java.util.Locale;

/**
 * A small SVG chart: panels side by side, each with linear axes, lines or point series, a legend and
 * optional vertical marks (a migration's start and end). Enough for throughput over time and
 * model-versus-measured plots; no dependency.
 */
public final class LinePlot {
  private static final String[] COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

  /**
   * One series; {@code points} draws markers without a line (measurements against a model's line);
   * {@code color} picks the palette entry (-1: the series' position), so a model and its measurements match.
   */
  public record Series(String label, double[] x, double[] y, boolean points, int color) {
    public Series(String label, double[] x, double[] y, boolean points) {
      this(label, x, y, points, -1);
    }
  }

  /** A vertical mark at {@code x}. */
  public record Mark(String label, double x) {}

  public record Panel(String title, String xLabel, String yLabel, List<Series> series, List<Mark> marks) {}

  private LinePlot() {}

  public static String svg(List<Panel> panels) {
    int w = 620;
    int h = 380;
    StringBuilder sb = document(w * panels.size(), h);
    for (int i = 0; i < panels.size(); i++) {
      panel(sb, panels.get(i), i * w, w, h);
    }
    return sb.append("</svg>\n").toString();
  }

  /** An SVG document's opening on a white background; the caller appends its shapes and {@code </svg>}. */
  public static StringBuilder document(int width, int height) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT,
        "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='12'>%n",
        width, height));
    sb.append(String.format(Locale.ROOT, "<rect width='%d' height='%d' fill='white'/>%n", width, height));
    return sb;
  }

  private static void panel(StringBuilder sb, Panel p, int x0, int w, int h) {
    int left = x0 + 70;
    int right = x0 + w - 20;
    int top = 40;
    int bottom = h - 50;
    double xmin = Double.MAX_VALUE;
    double xmax = -Double.MAX_VALUE;
    double ymax = 0;
    for (Series s : p.series()) {
      for (int i = 0; i < s.x().length; i++) {
        xmin = Math.min(xmin, s.x()[i]);
        xmax = Math.max(xmax, s.x()[i]);
        ymax = Math.max(ymax, s.y()[i]);
      }
    }
    if (xmin > xmax) {
      xmin = 0;
      xmax = 1;
    }
    if (xmax == xmin) {
      xmax = xmin + 1;
    }
    double yTick = niceStep(ymax <= 0 ? 1 : ymax, 5);
    double ytop = Math.max(yTick, Math.ceil(ymax / yTick) * yTick);
    double xTick = niceStep(xmax - xmin, 8);
    double xlo = Math.floor(xmin / xTick) * xTick;
    double xhi = Math.ceil(xmax / xTick) * xTick;
    sb.append(String.format(Locale.ROOT, "<text x='%d' y='22' font-size='14'>%s</text>%n", left, esc(p.title())));
    for (double y = 0; y <= ytop + 1e-9; y += yTick) {
      double py = bottom - y / ytop * (bottom - top);
      sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#e5e5e5'/>%n", left, py,
          right, py));
      sb.append(String.format(Locale.ROOT, "<text x='%d' y='%.1f' text-anchor='end'>%s</text>%n", left - 6, py + 4,
          fmt(y)));
    }
    for (double x = xlo; x <= xhi + 1e-9; x += xTick) {
      double px = left + (x - xlo) / (xhi - xlo) * (right - left);
      sb.append(String.format(Locale.ROOT, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#e5e5e5'/>%n", px, top, px,
          bottom));
      sb.append(String.format(Locale.ROOT, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>%n", px, bottom + 16,
          fmt(x)));
    }
    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>%n", left, bottom, right,
        bottom));
    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>%n", left, top, left,
        bottom));
    sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>%s</text>%n", (left + right) / 2,
        bottom + 36, esc(p.xLabel())));
    sb.append(String.format(Locale.ROOT,
        "<text x='%d' y='%d' text-anchor='middle' transform='rotate(-90 %d %d)'>%s</text>%n", x0 + 16,
        (top + bottom) / 2, x0 + 16, (top + bottom) / 2, esc(p.yLabel())));
    int markRow = 0;
    for (Mark m : p.marks()) {
      double px = left + (m.x() - xlo) / (xhi - xlo) * (right - left);
      sb.append(String.format(Locale.ROOT,
          "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#888' stroke-dasharray='4 3'/>%n", px, top, px, bottom));
      // Labels stacked from the bottom so they neither collide with each other nor with the legend.
      sb.append(String.format(Locale.ROOT, "<text x='%.1f' y='%d' fill='#555' font-size='10'>%s</text>%n", px + 3,
          bottom - 6 - 12 * markRow++, esc(m.label())));
    }
    int i = 0;
    for (Series s : p.series()) {
      String color = COLORS[(s.color() >= 0 ? s.color() : i) % COLORS.length];
      StringBuilder pts = new StringBuilder();
      for (int k = 0; k < s.x().length; k++) {
        double px = left + (s.x()[k] - xlo) / (xhi - xlo) * (right - left);
        double py = bottom - Math.min(s.y()[k], ytop) / ytop * (bottom - top);
        if (s.points()) {
          sb.append(String.format(Locale.ROOT, "<circle cx='%.1f' cy='%.1f' r='3.5' fill='none' stroke='%s'/>%n", px,
              py, color));
        } else {
          pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
        }
      }
      if (!s.points()) {
        sb.append(String.format(Locale.ROOT, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='%s'/>%n",
            color, pts));
      }
      sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' fill='%s'>%s%s</text>%n", right - 190,
          top + 14 + 15 * i, color, s.points() ? "○ " : "— ", esc(s.label())));
      i++;
    }
  }

  static double niceStep(double range, int ticks) {
    double raw = range / ticks;
    double mag = Math.pow(10, Math.floor(Math.log10(raw)));
    double n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }

  private static String fmt(double v) {
    if (Math.abs(v) >= 1000) {
      return String.format(Locale.ROOT, "%,.0f", v);
    }
    return Math.abs(v - Math.rint(v)) < 1e-9 ? String.format(Locale.ROOT, "%.0f", v)
        : String.format(Locale.ROOT, "%.2g", v);
  }

  /** Text escaped for SVG. */
  public static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;");
  }
}
