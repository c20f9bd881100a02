package io.vmd.bench.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The benchmarks' result files, written by Jackson from records as the CLI's --json is: JSON as one
 * object with the rows under a key ({@code {"rows":[...]}}), CSV with a header; field names are the
 * records' components in snake_case, units in the names.
 */
public final class BenchFiles {
  private static final ObjectMapper JSON = JsonMapper.builder()
      .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE).build();
  // CsvMapper sorts columns by name unless told: the record's order is the table's.
  private static final CsvMapper CSV = CsvMapper.builder().disable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
      .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE).build();

  private BenchFiles() {}

  /** {@code {"KEY": rows}} on one line, and a newline. */
  public static String json(String key, List<? extends Record> rows) {
    Map<String, Object> wrapper = new LinkedHashMap<>();
    wrapper.put(key, rows);
    try {
      return JSON.writeValueAsString(wrapper) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
    }
  }

  /** A header line of {@code type}'s components, then a line per row. */
  public static <R extends Record> String csv(Class<R> type, List<R> rows) {
    CsvSchema schema = CSV.schemaFor(type).withHeader();
    try {
      return CSV.writer(schema).writeValueAsString(rows);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write CSV: " + e.getMessage(), e);
    }
  }

  /** {@code v} rounded to {@code digits} decimals, as the tables print it. */
  public static double round(double v, int digits) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      return v;
    }
    double scale = Math.pow(10, digits);
    return Math.round(v * scale) / scale;
  }
}
