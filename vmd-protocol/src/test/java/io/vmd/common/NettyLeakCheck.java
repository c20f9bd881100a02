package io.vmd.common;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs every test class with Netty's leak detector at {@code paranoid} (every buffer tracked) and
 * fails the class when a buffer it leaked is collected without having been released. Registered for every test of every module that has vmd-protocol's test jar on its class
 * path (META-INF/services plus junit-platform.properties' autodetection).
 *
 * <p>A leak is only seen once the buffer is garbage: after each class this collects garbage and
 * allocates a few buffers, which is when Netty looks at what was collected.
 */
public final class NettyLeakCheck implements BeforeAllCallback, AfterAllCallback {
  private static final List<String> LEAKS = new CopyOnWriteArrayList<>();

  static {
    // Every buffer tracked; its record keeps where it was made, retained and released, not each byte
    // read (a stack trace per access would make the data-heavy tests several times slower).
    System.setProperty("io.netty.leakDetection.acquireAndReleaseOnly", "true");
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
    ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new ResourceLeakDetectorFactory() {
      @Override
      @SuppressWarnings("deprecation")
      public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval,
          long maxActive) {
        return new ResourceLeakDetector<T>(resource, samplingInterval) {
          @Override
          protected boolean needReport() {
            return true;
          }

          @Override
          protected void reportTracedLeak(String resourceType, String records) {
            LEAKS.add(resourceType + " leaked" + records);
            super.reportTracedLeak(resourceType, records);
          }

          @Override
          protected void reportUntracedLeak(String resourceType) {
            LEAKS.add(resourceType + " leaked (no record of where)");
            super.reportUntracedLeak(resourceType);
          }
        };
      }
    });
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    // The static initializer ran: the detector is in place before the class's first buffer.
  }

  @Override
  public void afterAll(ExtensionContext context) throws InterruptedException {
    for (int i = 0; i < 3 && LEAKS.isEmpty(); i++) {
      System.gc();
      Thread.sleep(100);
      // Netty looks at collected buffers when new ones are tracked.
      for (int k = 0; k < 8; k++) {
        ByteBuf a = PooledByteBufAllocator.DEFAULT.directBuffer(16);
        ByteBuf b = UnpooledByteBufAllocator.DEFAULT.directBuffer(16);
        ByteBuf c = PooledByteBufAllocator.DEFAULT.heapBuffer(16);
        a.release();
        b.release();
        c.release();
      }
    }
    if (!LEAKS.isEmpty()) {
      List<String> found = new ArrayList<>(LEAKS);
      LEAKS.clear();
      throw new AssertionError(found.size() + " Netty buffer leak(s) after " + context.getDisplayName() + ":\n"
          + String.join("\n\n", found));
    }
  }

  /** Leaks seen so far and not yet reported (for the check's own test). */
  static List<String> pending() {
    return LEAKS;
  }
}
