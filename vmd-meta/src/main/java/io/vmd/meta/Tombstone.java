package io.vmd.meta;

/** A deleted namespace: its id is never given out again, and servers drop its pages when they see this. */
public record Tombstone(int id, String name, long deletedAtMillis) {}
