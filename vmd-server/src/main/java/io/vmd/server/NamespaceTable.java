package io.vmd.server;

import io.netty.util.collection.IntObjectHashMap;
import io.vmd.protocol.NamespaceRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The namespaces this server knows. Every server holds the whole table; administrators change it on
 * all of them. Lookups by id on the data path read a copy-on-write primitive map: no lock, no boxing,
 * and its size follows the number of namespaces, not the largest id (ids go up to 2^24).
 * With a data directory the table is rewritten atomically on every change, so an epoch bump
 * survives a restart (fencing depends on it).
 */
public final class NamespaceTable {
  private static final String FILE = "namespaces.tsv";
  private final Path file;
  private volatile IntObjectHashMap<NamespaceRecord> byId = new IntObjectHashMap<>();

  public NamespaceTable(Path dataDir) {
    this.file = dataDir == null ? null : dataDir.resolve(FILE);
    if (file != null && Files.exists(file)) {
      load();
    }
  }

  /** The namespace with this id, or null. */
  public NamespaceRecord get(int id) {
    return byId.get(id);
  }

  public synchronized NamespaceRecord byName(String name) {
    for (NamespaceRecord r : byId.values()) {
      if (r.name().equals(name)) {
        return r;
      }
    }
    return null;
  }

  /** Every namespace, by id. */
  public List<NamespaceRecord> list() {
    List<NamespaceRecord> out = new ArrayList<>(byId.values());
    out.sort(Comparator.comparingInt(NamespaceRecord::id));
    return out;
  }

  /**
   * Adds the namespace. Creating one that exists with the same id, name, size and replica count is
   * not an error (the CLI retries on every server); any other clash is.
   *
   * @return the stored record
   * @throws IllegalStateException on a clash
   */
  public synchronized NamespaceRecord create(NamespaceRecord ns) {
    NamespaceRecord same = get(ns.id());
    if (same != null) {
      if (same.name().equals(ns.name()) && same.sizeBytes() == ns.sizeBytes()
          && same.replicas() == ns.replicas()) {
        return same;
      }
      throw new IllegalStateException("namespace id " + ns.id() + " is already '" + same.name() + "'");
    }
    NamespaceRecord named = byName(ns.name());
    if (named != null) {
      throw new IllegalStateException("namespace '" + ns.name() + "' exists with id " + named.id());
    }
    put(ns);
    return ns;
  }

  /** Removes the namespace; returns it, or null when there was none. */
  public synchronized NamespaceRecord remove(int id) {
    NamespaceRecord old = get(id);
    if (old != null) {
      IntObjectHashMap<NamespaceRecord> t = copy();
      t.remove(id);
      byId = t;
      save();
    }
    return old;
  }

  /**
   * Makes the table exactly {@code live} (the control plane's namespaces with their epochs); returns
   * the namespaces it dropped.
   */
  synchronized List<NamespaceRecord> replaceAll(List<NamespaceRecord> live, ServerMetrics metrics) {
    IntObjectHashMap<NamespaceRecord> next = new IntObjectHashMap<>(Math.max(8, live.size() * 2));
    for (NamespaceRecord r : live) {
      next.put(r.id(), r);
      if (byId.get(r.id()) == null) {
        metrics.namespaceAdded(r);
      }
    }
    List<NamespaceRecord> dropped = new ArrayList<>();
    for (NamespaceRecord r : byId.values()) {
      if (next.get(r.id()) == null) {
        dropped.add(r);
        metrics.namespaceRemoved(r.id());
      }
    }
    if (!next.equals(byId)) {
      byId = next;
      save();
    }
    return dropped;
  }

  /** Raises the epoch to at least {@code proposed}; returns the record as it now is, or null. */
  public synchronized NamespaceRecord raiseEpoch(int id, long proposed) {
    NamespaceRecord cur = get(id);
    if (cur == null || cur.epoch() >= proposed) {
      return cur;
    }
    NamespaceRecord next = cur.withEpoch(proposed);
    put(next);
    return next;
  }

  private void put(NamespaceRecord ns) {
    IntObjectHashMap<NamespaceRecord> t = copy();
    t.put(ns.id(), ns);
    byId = t;
    save();
  }

  private IntObjectHashMap<NamespaceRecord> copy() {
    IntObjectHashMap<NamespaceRecord> t = new IntObjectHashMap<>(Math.max(8, byId.size() * 2));
    t.putAll(byId);
    return t;
  }

  private void save() {
    if (file == null) {
      return;
    }
    StringBuilder sb = new StringBuilder("# id\tname\tsize\treplicas\tepoch\n");
    for (NamespaceRecord r : list()) {
      sb.append(r.id()).append('\t').append(r.name()).append('\t').append(r.sizeBytes()).append('\t')
          .append(r.replicas()).append('\t').append(r.epoch()).append('\n');
    }
    try {
      Files.createDirectories(file.getParent());
      Path tmp = file.resolveSibling(FILE + ".tmp");
      Files.write(tmp, sb.toString().getBytes(StandardCharsets.UTF_8));
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot save the namespace table to " + file, e);
    }
  }

  private void load() {
    try {
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] f = line.split("\t");
        put(new NamespaceRecord(Integer.parseInt(f[0]), f[1], Long.parseLong(f[2]),
            Integer.parseInt(f[3]), Long.parseLong(f[4])));
      }
    } catch (IOException | RuntimeException e) {
      throw new IllegalStateException("cannot read the namespace table " + file + ": " + e, e);
    }
  }
}
