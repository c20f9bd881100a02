package io.vmd.bench.fault;

import com.sun.management.GarbageCollectionNotificationInfo;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import javax.management.NotificationEmitter;
import javax.management.NotificationListener;
import javax.management.openmbean.CompositeData;

/** Counts this JVM's stop-the-world GC pauses and keeps the longest, while open. */
final class GcWatch implements AutoCloseable {
  private final List<NotificationEmitter> emitters = new ArrayList<>();
  private final NotificationListener listener;
  private volatile long maxPauseMillis;
  private volatile int pauses;

  GcWatch() {
    listener = (n, handback) -> {
      if (GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION.equals(n.getType())) {
        GarbageCollectionNotificationInfo info = GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
        // Concurrent collectors report their whole cycles too ("ZGC Cycles", "Shenandoah Cycles",
        // "G1 Concurrent GC"); those run beside the application and are not pauses.
        String name = info.getGcName();
        if (!name.endsWith("Cycles") && !name.contains("Concurrent") && !info.getGcAction().contains("concurrent")) {
          pauses++;
          maxPauseMillis = Math.max(maxPauseMillis, info.getGcInfo().getDuration());
        }
      }
    };
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      if (gc instanceof NotificationEmitter e) {
        e.addNotificationListener(listener, null, null);
        emitters.add(e);
      }
    }
  }

  long maxPauseMillis() {
    return maxPauseMillis;
  }

  int pauses() {
    return pauses;
  }

  @Override
  public void close() {
    for (NotificationEmitter e : emitters) {
      try {
        e.removeNotificationListener(listener);
      } catch (javax.management.ListenerNotFoundException ignored) {
        // already gone
      }
    }
  }
}
