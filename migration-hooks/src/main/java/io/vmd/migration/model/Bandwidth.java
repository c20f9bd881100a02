package io.vmd.migration.model;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Link speeds as people write them, in decimal units as networks count: {@code 1Gbit}, {@code 100Mbit/s},
 * {@code 125MB/s}, {@code 10GbE}; a bare number is bytes per second.
 */
public final class Bandwidth {
  private static final Pattern FORM =
      Pattern.compile("([0-9]+(?:\\.[0-9]+)?)\\s*([kmgt]?)(bit|bps|b|be)?(?:/s|ps)?", Pattern.CASE_INSENSITIVE);

  private Bandwidth() {}

  /** Bytes per second. */
  public static double parse(String text) {
    Matcher m = FORM.matcher(text == null ? "" : text.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException("bandwidth '" + text + "' is not like 1Gbit, 100Mbit/s or 125MB/s");
    }
    double v = Double.parseDouble(m.group(1));
    double scale = switch (m.group(2).toLowerCase(Locale.ROOT)) {
      case "k" -> 1e3;
      case "m" -> 1e6;
      case "g" -> 1e9;
      case "t" -> 1e12;
      default -> 1;
    };
    String unit = m.group(3) == null ? "B" : m.group(3);
    boolean bits = unit.equalsIgnoreCase("bit") || unit.equalsIgnoreCase("bps") || unit.equalsIgnoreCase("be")
        || unit.equals("b");
    double bytes = v * scale / (bits ? 8 : 1);
    if (bytes <= 0) {
      throw new IllegalArgumentException("bandwidth '" + text + "' must be positive");
    }
    return bytes;
  }

  public static String format(double bytesPerSecond) {
    double bits = bytesPerSecond * 8;
    if (bits >= 1e9) {
      return String.format(Locale.ROOT, "%.2f Gbit/s", bits / 1e9);
    }
    return String.format(Locale.ROOT, "%.1f Mbit/s", bits / 1e6);
  }
}
