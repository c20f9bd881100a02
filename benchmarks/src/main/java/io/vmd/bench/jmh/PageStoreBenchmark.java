package io.vmd.bench.jmh;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.Pages;
import io.vmd.server.store.PageStore;
import io.vmd.server.store.PageStores;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * 4 KiB page get and put (overwrite of a stored page) on each store engine, one and two threads.
 * Run: {@code java -jar benchmarks/target/benchmarks.jar PageStoreBenchmark} (add {@code -prof gc}
 * for allocation per operation).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {
  "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
  "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
  "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED", "--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED", "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
  "-Dchronicle.analytics.disable=true", "-Xms2g", "-Xmx2g"})
public class PageStoreBenchmark {
  static final int PAGES = 100_000;

  @State(Scope.Benchmark)
  public static class Store {
    @Param({"slab", "chronicle"})
    public String engine;

    PageStore store;

    @Setup(Level.Trial)
    public void fill() {
      store = PageStores.open(engine, 1L << 30, null);
      ByteBuf page = Unpooled.directBuffer(Pages.PAGE_SIZE).writeZero(Pages.PAGE_SIZE);
      for (int p = 0; p < PAGES; p++) {
        page.setLong(0, p);
        store.write(1, p, 1, page, 1);
      }
      page.release();
    }

    @TearDown(Level.Trial)
    public void close() {
      store.close();
    }
  }

  @State(Scope.Thread)
  public static class Buffers {
    final SplittableRandom random = new SplittableRandom(42);
    ByteBuf dst;
    ByteBuf src;

    @Setup(Level.Trial)
    public void allocate() {
      dst = Unpooled.directBuffer(Pages.PAGE_SIZE);
      src = Unpooled.directBuffer(Pages.PAGE_SIZE).writeZero(Pages.PAGE_SIZE);
    }

    @TearDown(Level.Trial)
    public void free() {
      dst.release();
      src.release();
    }
  }

  private static boolean get(Store s, Buffers b) {
    b.dst.clear();
    return s.store.read(1, b.random.nextInt(PAGES), b.dst) != PageStore.NO_STAMP;
  }

  private static boolean put(Store s, Buffers b) {
    return s.store.write(1, b.random.nextInt(PAGES), 1, b.src, 1);
  }

  @Benchmark
  @Threads(1)
  public boolean get1(Store s, Buffers b) {
    return get(s, b);
  }

  @Benchmark
  @Threads(2)
  public boolean get2(Store s, Buffers b) {
    return get(s, b);
  }

  @Benchmark
  @Threads(1)
  public boolean put1(Store s, Buffers b) {
    return put(s, b);
  }

  @Benchmark
  @Threads(2)
  public boolean put2(Store s, Buffers b) {
    return put(s, b);
  }
}
