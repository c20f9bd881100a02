package io.vmd.server.store;

import java.util.Arrays;

/**
 * Open-addressing hash map from a non-zero long key to an int, with linear probing and
 * backward-shift deletion (no tombstones, so lookups stay short after many deletes). Grows by
 * doubling at 60 % load and starts small, so its memory follows the pages stored. Not thread-safe.
 */
final class LongIntIndex {
  static final int MISSING = -1;
  private static final float LOAD = 0.6f;

  private long[] keys;
  private int[] values;
  private int mask;
  private int size;
  private int resizeAt;

  LongIntIndex(int expected) {
    int cap = Math.max(16, Integer.highestOneBit(Math.max(1, (int) (expected / LOAD)) - 1) << 1);
    allocate(cap);
  }

  private void allocate(int capacity) {
    keys = new long[capacity];
    values = new int[capacity];
    mask = capacity - 1;
    resizeAt = (int) (capacity * LOAD);
  }

  static int hash(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return (int) (h ^ (h >>> 32));
  }

  int size() {
    return size;
  }

  int get(long key) {
    long[] k = keys;
    int m = mask;
    for (int i = hash(key) & m; ; i = (i + 1) & m) {
      long cur = k[i];
      if (cur == key) {
        return values[i];
      }
      if (cur == 0) {
        return MISSING;
      }
    }
  }

  /** Sets the value; returns the previous one or {@link #MISSING}. */
  int put(long key, int value) {
    assert key != 0;
    for (int i = hash(key) & mask; ; i = (i + 1) & mask) {
      long cur = keys[i];
      if (cur == key) {
        int old = values[i];
        values[i] = value;
        return old;
      }
      if (cur == 0) {
        keys[i] = key;
        values[i] = value;
        if (++size > resizeAt) {
          rehash(keys.length << 1);
        }
        return MISSING;
      }
    }
  }

  /** Removes the key; returns its value or {@link #MISSING}. */
  int remove(long key) {
    int i = hash(key) & mask;
    while (true) {
      long cur = keys[i];
      if (cur == 0) {
        return MISSING;
      }
      if (cur == key) {
        break;
      }
      i = (i + 1) & mask;
    }
    int old = values[i];
    // Backward shift: pull later entries of the probe chain into the hole.
    int hole = i;
    for (int j = (hole + 1) & mask; keys[j] != 0; j = (j + 1) & mask) {
      int home = hash(keys[j]) & mask;
      boolean movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        keys[hole] = keys[j];
        values[hole] = values[j];
        hole = j;
      }
    }
    keys[hole] = 0;
    size--;
    if (keys.length > 1024 && size < resizeAt / 8) {
      rehash(keys.length >>> 1);
    }
    return old;
  }

  private void rehash(int capacity) {
    long[] oldKeys = keys;
    int[] oldValues = values;
    allocate(capacity);
    for (int i = 0; i < oldKeys.length; i++) {
      long k = oldKeys[i];
      if (k != 0) {
        int j = hash(k) & mask;
        while (keys[j] != 0) {
          j = (j + 1) & mask;
        }
        keys[j] = k;
        values[j] = oldValues[i];
      }
    }
  }

  /** Visits every entry; the visitor must not modify the index. */
  void forEach(Visitor v) {
    long[] k = keys;
    for (int i = 0; i < k.length; i++) {
      if (k[i] != 0) {
        v.visit(k[i], values[i]);
      }
    }
  }

  void clear() {
    Arrays.fill(keys, 0);
    size = 0;
  }

  interface Visitor {
    void visit(long key, int value);
  }
}
