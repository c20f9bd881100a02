package io.vmd.client;

/** Byte-array searches the data-path tests share: where a page's plaintext shows up, if anywhere. */
final class TestBytes {
  private TestBytes() {}

  /** The first index of {@code needle} in {@code hay}, or -1. */
  static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
