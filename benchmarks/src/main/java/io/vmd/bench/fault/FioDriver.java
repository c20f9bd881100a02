package io.vmd.bench.fault;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmd.load.Driver;
import io.vmd.load.Result;
import io.vmd.load.Workload;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The same workloads driven by fio's nbd engine (libnbd), so the numbers compare with what anyone
 * measures with fio: one fio process per run, one job, one connection, reads and writes reported
 * together ({@code unified_rw_reporting}), latency from submission to completion ({@code lat_ns}).
 */
final class FioDriver implements Driver {
  static final double[] PERCENTILES = {50, 90, 99, 99.9};
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String uri;

  FioDriver(String uri) {
    this.uri = uri;
  }

  @Override
  public void fill(long bytes) throws Exception {
    Result r = fio(List.of("--rw=write", "--bs=1m", "--iodepth=8", "--size=" + bytes));
    if (r.bytes < bytes) {
      throw new IOException("fio filled " + r.bytes + " of " + bytes + " bytes of " + uri);
    }
  }

  @Override
  public Result run(Workload w, long region, long nanos) throws Exception {
    List<String> job = new ArrayList<>();
    String rw = w.sequential() ? (w.readPercent() == 100 ? "read" : w.readPercent() == 0 ? "write" : "rw")
        : (w.readPercent() == 100 ? "randread" : w.readPercent() == 0 ? "randwrite" : "randrw");
    job.add("--rw=" + rw);
    if (w.readPercent() > 0 && w.readPercent() < 100) {
      job.add("--rwmixread=" + w.readPercent());
    }
    job.add("--bs=" + w.blockSize());
    job.add("--iodepth=" + w.queueDepth());
    job.add("--size=" + region);
    job.add("--time_based=1");
    job.add("--runtime=" + Math.max(1, nanos / 1_000_000) + "ms");
    return fio(job);
  }

  private Result fio(List<String> job) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("fio", "--name=vmd-bench", "--ioengine=nbd", "--uri=" + uri,
        "--output-format=json", "--unified_rw_reporting=1", "--lat_percentiles=1",
        "--percentile_list=50:90:99:99.9"));
    cmd.addAll(job);
    Path out = Files.createTempFile("vmd-bench-fio", ".json");
    try {
      Process p;
      try {
        p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
      } catch (IOException e) {
        throw new IOException("fio is not installed (apt-get install fio): " + e.getMessage(), e);
      }
      if (!p.waitFor(10, TimeUnit.MINUTES)) {
        p.destroyForcibly();
        throw new IOException("fio did not finish in 10 minutes: " + String.join(" ", cmd));
      }
      String text = Files.readString(out, StandardCharsets.UTF_8);
      if (p.exitValue() != 0) {
        throw new IOException("fio exited with " + p.exitValue() + ": " + String.join(" ", cmd) + "\n" + text);
      }
      return parse(text);
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /** fio's JSON report (after whatever the nbd engine printed first) as a {@link Result}. */
  static Result parse(String text) throws IOException {
    int start = text.indexOf('{');
    if (start < 0) {
      throw new IOException("no JSON in fio's output: " + text);
    }
    JsonNode job = JSON.readTree(text.substring(start)).path("jobs").path(0);
    if (job.path("error").asInt(0) != 0) {
      throw new IOException("fio reported error " + job.path("error").asInt() + ": " + text);
    }
    JsonNode mixed = job.path("mixed");
    if (mixed.isMissingNode()) {
      throw new IOException("fio's report has no unified ('mixed') section: " + text);
    }
    Result r = new Result();
    r.operations = mixed.path("total_ios").asLong();
    r.bytes = mixed.path("io_bytes").asLong();
    r.elapsedNanos = TimeUnit.MILLISECONDS.toNanos(job.path("job_runtime").asLong());
    JsonNode pct = mixed.path("lat_ns").path("percentile");
    for (double p : PERCENTILES) {
      JsonNode v = pct.path(String.format(Locale.ROOT, "%.6f", p));
      if (v.isMissingNode()) {
        if (r.operations > 0) {
          throw new IOException("fio's report has no " + p + "th latency percentile: " + pct);
        }
        continue;
      }
      r.percentileNanos.put(p, v.asLong());
    }
    double cpuPercent = job.path("usr_cpu").asDouble() + job.path("sys_cpu").asDouble();
    r.clientCpuMicros = cpuPercent / 100 * r.elapsedNanos / 1000.0;
    return r;
  }

  @Override
  public void close() {}
}
