package io.vmd.bench.jmh;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/** Encoding a PUT header and validating and reading a frame in place: the per-frame protocol cost. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class FrameCodecBenchmark {
  private ByteBuf header;
  private ByteBuf frame;
  private long id;

  @Setup
  public void setUp() {
    header = PooledByteBufAllocator.DEFAULT.directBuffer(64);
    frame = PooledByteBufAllocator.DEFAULT.directBuffer(Frame.LENGTH_FIELD + Frame.HEADER_SIZE + 4096);
    Frame.writeHeader(frame, Op.PUT, 0, 0, 1, 1, 1, 10, 1, 4096);
    frame.writeZero(4096);
    frame.skipBytes(Frame.LENGTH_FIELD);
  }

  @TearDown
  public void tearDown() {
    header.release();
    frame.release();
  }

  @Benchmark
  public int encodePutHeader() {
    header.clear();
    Frame.writeHeader(header, Op.PUT, 0, 0, ++id, 1, 7, id & 1023, 1, 4096);
    return header.writerIndex();
  }

  @Benchmark
  public long validateAndReadRequest() {
    if (Frame.checkRequest(frame) != null) {
      throw new IllegalStateException();
    }
    return Frame.requestId(frame) + Frame.firstPage(frame) + Frame.pageCount(frame) + Frame.epoch(frame);
  }
}
