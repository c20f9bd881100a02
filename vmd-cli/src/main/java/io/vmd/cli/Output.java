package io.vmd.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.vmd.common.Sizes;
import java.io.PrintWriter;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * What a command prints: an aligned table for people, or with {@code --json} one JSON object for
 * scripts, written by Jackson from records. A list goes under a key ({@code {"namespaces":[...]}}), a
 * single result is an object of its own fields; field names are the records' components in
 * snake_case. Each command's shape is listed in README.md ("JSON output") and read back by a test.
 */
final class Output {
  static final ObjectMapper JSON = JsonMapper.builder()
      .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE).build();

  private Output() {}

  /** Prints {@code rows} as a table, or as {@code {"KEY": [rows]}}; {@code sizes}: columns shown as sizes. */
  static void list(PrintWriter out, boolean json, String key, List<? extends Record> rows, Class<? extends Record> type,
      String... sizes) {
    if (json) {
      Map<String, Object> wrapper = new LinkedHashMap<>();
      wrapper.put(key, rows);
      out.println(write(wrapper));
    } else {
      table(out, type, rows, Set.of(sizes));
    }
    out.flush();
  }

  /** Prints one result as a one-row table, or as a JSON object of its fields. */
  static void one(PrintWriter out, boolean json, Record row, String... sizes) {
    if (json) {
      out.println(write(row));
    } else {
      table(out, row.getClass(), List.of(row), Set.of(sizes));
    }
    out.flush();
  }

  /** Any value (a record, a map of them) as one line of JSON. */
  static String write(Object value) {
    try {
      return JSON.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
    }
  }

  /** An aligned table: a column per record component, headed by its snake_case name in upper case. */
  static void table(PrintWriter out, Class<?> type, List<? extends Record> rows, Set<String> sizes) {
    RecordComponent[] components = type.getRecordComponents();
    List<String> header = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (RecordComponent c : components) {
      String name = snake(c.getName());
      names.add(name);
      header.add(name.toUpperCase(Locale.ROOT).replace('_', ' '));
    }
    List<List<String>> cells = new ArrayList<>();
    for (Record row : rows) {
      List<String> line = new ArrayList<>();
      for (int i = 0; i < components.length; i++) {
        line.add(cell(value(components[i], row), sizes.contains(names.get(i))));
      }
      cells.add(line);
    }
    int[] width = new int[components.length];
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

  private static Object value(RecordComponent c, Record row) {
    try {
      return c.getAccessor().invoke(row);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot read " + c.getName() + " of " + row, e);
    }
  }

  private static String cell(Object v, boolean size) {
    if (v == null) {
      return "—";
    }
    if (size && v instanceof Number n) {
      return Sizes.format(n.longValue());
    }
    if (v instanceof List<?> l) {
      return l.isEmpty() ? "-" : String.join(",", l.stream().map(String::valueOf).toList());
    }
    return String.valueOf(v);
  }

  /** Jackson's SNAKE_CASE, for the table's headers: timeS -> time_s, guestDowntimeMs -> guest_downtime_ms. */
  static String snake(String camel) {
    return ((PropertyNamingStrategies.NamingBase) PropertyNamingStrategies.SNAKE_CASE).translate(camel);
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
}
