package io.vmd.bench.fault;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vmd.load.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the harness reads about the processes under test: /proc stat lines, safepoint logs, fio's report. */
class ProcessReadersTest {

  @Test
  void statTicksAreCountedFromTheLastParenthesisSinceCommandNamesHoldSpacesAndParentheses() {
    String line = "4242 (C2 Compiler) x) S 1 4242 4242 0 -1 4194368 1200 0 0 0 731 269 0 0 20 0 22 0 5000 0 0";
    assertThat(ProcessCpu.parseTicks(line)).isEqualTo(731 + 269);
  }

  @Test
  void thisProcessHasSpentCpuAndAGoneOneReadsAsNone() {
    ProcessCpu.Snapshot self = ProcessCpu.of(ProcessHandle.current().pid());
    assertThat(self.totalMicros()).isPositive();
    assertThat(self.jitMicros()).isBetween(0.0, self.totalMicros());
    assertThat(ProcessCpu.of(Integer.MAX_VALUE)).isEqualTo(new ProcessCpu.Snapshot(0, 0));
  }

  @Test
  void safepointLinesOfJdk17And25GiveTheLongestPauseOnlyOnce(@TempDir Path dir) throws IOException {
    Path file = dir.resolve("s.log");
    SafepointLog log = new SafepointLog(file);
    assertThat(log.sinceLastRead()).isEqualTo(SafepointLog.Pauses.NONE);
    Files.writeString(file, """
        [2.246s][info][safepoint] Safepoint "ZMarkStart", Time since last: 9522697 ns, Reaching safepoint: 3547 ns, Cleanup: 4792 ns, At safepoint: 31519 ns, Total: 39858 ns
        [2.554s][info][safepoint] Safepoint "ZRelocateStartOld", Time since last: 3857543 ns, Reaching safepoint: 107004 ns, At safepoint: 33639 ns, Leaving safepoint: 6426 ns, Total: 1470690 ns, Threads: 1 runnable, 10 total
        [2.560s][info][safepoint] Safepoint "Cleanup", Time since""");
    SafepointLog.Pauses p = log.sinceLastRead();
    assertThat(p.count()).isEqualTo(2);
    assertThat(p.maxNanos()).isEqualTo(1_470_690);
    assertThat(p.longest()).isEqualTo("ZRelocateStartOld");
    // the unfinished line is read once it is whole, the others not again
    Files.writeString(file, ", Reaching safepoint: 1 ns, At safepoint: 2 ns, Total: 5000 ns\n", StandardOpenOption.APPEND);
    assertThat(log.sinceLastRead()).isEqualTo(new SafepointLog.Pauses(1, 5000, "Cleanup"));
    assertThat(log.sinceLastRead()).isEqualTo(SafepointLog.Pauses.NONE);
  }

  @Test
  void fioReportAfterTheEnginesBannerBecomesAResult() throws IOException {
    Result r = FioDriver.parse("""
        fio: connected to NBD server
        {"fio version":"fio-3.33","jobs":[{"jobname":"vmd-bench","error":0,"job_runtime":500,"usr_cpu":22.4,"sys_cpu":57.6,
         "mixed":{"io_bytes":124121088,"total_ios":30303,"lat_ns":{"min":1,"percentile":
          {"50.000000":48896,"90.000000":88576,"99.000000":362496,"99.900000":1597440}}}}]}
        """);
    assertThat(r.operations).isEqualTo(30303);
    assertThat(r.bytes).isEqualTo(124121088);
    assertThat(r.iops()).isEqualTo(60606, org.assertj.core.data.Offset.offset(1.0));
    assertThat(r.micros(50)).isEqualTo(48.896);
    assertThat(r.micros(99.9)).isEqualTo(1597.44);
    assertThat(r.clientCpuMicros).isEqualTo(400_000, org.assertj.core.data.Offset.offset(1.0));
    assertThat(r.hasHistogram()).isFalse();
  }

  @Test
  void aFioErrorOrAMissingSectionIsAnErrorNotAZeroRow() {
    assertThatThrownBy(() -> FioDriver.parse("fio: failed to connect\n")).hasMessageContaining("no JSON");
    assertThatThrownBy(() -> FioDriver.parse("{\"jobs\":[{\"error\":5}]}")).hasMessageContaining("error 5");
    assertThatThrownBy(() -> FioDriver.parse("{\"jobs\":[{\"error\":0,\"read\":{}}]}")).hasMessageContaining("unified");
  }
}
