package io.vmd.cli;

import io.vmd.common.Sizes;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Rows printed as an aligned table for people or as JSON for scripts. */
final class Output {
  private final List<String> columns;
  private final List<Map<String, Object>> rows = new ArrayList<>();

  Output(String... columns) {
    this.columns = List.of(columns);
  }

  Output row(Object... values) {
    Map<String, Object> row = new LinkedHashMap<>();
    for (int i = 0; i < columns.size(); i++) {
      row.put(columns.get(i), values[i]);
    }
    rows.add(row);
    return this;
  }

  void print(PrintWriter out, boolean json, Map<String, String> display) {
    if (json) {
      out.println(toJson());
    } else {
      printTable(out, display);
    }
    out.flush();
  }

  private void printTable(PrintWriter out, Map<String, String> display) {
    List<String> header = new ArrayList<>();
    for (String c : columns) {
      header.add(c.toUpperCase(Locale.ROOT).replace('_', ' '));
    }
    List<List<String>> cells = new ArrayList<>();
    for (Map<String, Object> row : rows) {
      List<String> line = new ArrayList<>();
      for (String c : columns) {
        Object v = row.get(c);
        String fmt = display.get(c);
        line.add(v == null ? "—" : "size".equals(fmt) && v instanceof Long l ? Sizes.format(l)
            : String.valueOf(v));
      }
      cells.add(line);
    }
    int[] width = new int[columns.size()];
    for (int i = 0; i < width.length; i++) {
      width[i] = header.get(i).length();
      for (List<String> line : cells) {
        width[i] = Math.max(width[i], line.get(i).length());
      }
    }
    printLine(out, header, width);
    for (List<String> line : cells) {
      printLine(out, line, width);
    }
  }

  private static void printLine(PrintWriter out, List<String> cells, int[] width) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < cells.size(); i++) {
      String c = cells.get(i);
      sb.append(c);
      if (i < cells.size() - 1) {
        sb.append(" ".repeat(width[i] - c.length() + 2));
      }
    }
    out.println(sb);
  }

  String toJson() {
    StringBuilder sb = new StringBuilder("[");
    for (int r = 0; r < rows.size(); r++) {
      sb.append(r == 0 ? "" : ",").append('{');
      int i = 0;
      for (Map.Entry<String, Object> e : rows.get(r).entrySet()) {
        sb.append(i++ == 0 ? "" : ",").append(quote(e.getKey())).append(':');
        Object v = e.getValue();
        sb.append(v == null || v instanceof Number || v instanceof Boolean ? String.valueOf(v) : quote(String.valueOf(v)));
      }
      sb.append('}');
    }
    return sb.append(']').toString();
  }

  static String quote(String s) {
    StringBuilder sb = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        default:
          if (ch < 0x20) {
            sb.append(String.format("\\u%04x", (int) ch));
          } else {
            sb.append(ch);
          }
      }
    }
    return sb.append('"').toString();
  }
}
