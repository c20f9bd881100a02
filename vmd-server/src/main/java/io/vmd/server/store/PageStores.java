package io.vmd.server.store;

import java.nio.file.Path;
import java.util.Locale;

/** Builds the engine a server was configured with. */
public final class PageStores {
  private PageStores() {}

  /**
   * @param engine "slab" (default) or "chronicle"
   * @param dataDir where a persisted engine keeps its file, or null for memory only
   */
  public static PageStore open(String engine, long capacityBytes, Path dataDir) {
    switch (engine.toLowerCase(Locale.ROOT)) {
      case "slab":
        if (dataDir != null) {
          throw new IllegalArgumentException(
              "the slab store lives in memory only; use --store chronicle with --data-dir");
        }
        return new OffHeapSlabStore(capacityBytes);
      case "chronicle":
        return dataDir == null
            ? ChronicleStore.inMemory(capacityBytes)
            : ChronicleStore.persisted(capacityBytes, dataDir);
      default:
        throw new IllegalArgumentException("unknown store '" + engine + "' (slab or chronicle)");
    }
  }
}
