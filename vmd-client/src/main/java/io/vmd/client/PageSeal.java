package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Pages;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Seals the pages of one namespace before they leave this host: AES-256-GCM under the namespace's key,
 * which servers never see. A sealed record is the encrypted page followed by its 16-byte tag.
 *
 * <p>The nonce is the page index (33 bits) and the write's stamp (63 bits), 96 bits together: every
 * write has a stamp of its own, so no nonce repeats under a key (sealed namespaces are at most 2^33
 * pages). The associated data is namespace id, page and stamp: a server cannot forge a page, move it
 * to another index or namespace, or relabel an old copy as a newer one. It can still hand back an old
 * copy under its old stamp; the reader compares stamps ({@link StampTable}).
 */
final class PageSeal {
  static final int RECORD = Frame.SEALED_RECORD;
  /** Pages a sealed namespace may have: page index and stamp share the 96-bit nonce. */
  static final long MAX_PAGES = 1L << 33;

  private final int namespace;
  private final SecretKeySpec key;
  private final ThreadLocal<Cipher> ciphers = ThreadLocal.withInitial(PageSeal::newCipher);

  PageSeal(int namespace, byte[] key) {
    if (key.length != 32) {
      throw new IllegalArgumentException("a page key is 32 bytes, not " + key.length);
    }
    this.namespace = namespace;
    this.key = new SecretKeySpec(key, "AES");
  }

  private static Cipher newCipher() {
    try {
      return Cipher.getInstance("AES/GCM/NoPadding");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("no AES-GCM in this JVM: " + e.getMessage(), e);
    }
  }

  private static GCMParameterSpec nonce(long page, long stamp) {
    if (page < 0 || page >= MAX_PAGES || stamp < 0) {
      throw new IllegalArgumentException("page " + page + " or stamp " + stamp + " outside what a nonce holds");
    }
    byte[] n = new byte[12];
    ByteBuffer.wrap(n).putInt((int) (page >>> 1)).putLong((page & 1) << 63 | stamp);
    return new GCMParameterSpec(128, n);
  }

  private byte[] associatedData(long page, long stamp) {
    byte[] a = new byte[20];
    ByteBuffer.wrap(a).putInt(namespace).putLong(page).putLong(stamp);
    return a;
  }

  /** Writes the sealed record of the page at {@code src[srcIndex]} into {@code dst} at {@code dstIndex}. */
  void seal(long page, long stamp, ByteBuf src, int srcIndex, ByteBuf dst, int dstIndex) {
    Cipher c = ciphers.get();
    try {
      c.init(Cipher.ENCRYPT_MODE, key, nonce(page, stamp));
      c.updateAAD(associatedData(page, stamp));
      c.doFinal(src.nioBuffer(srcIndex, Pages.PAGE_SIZE), dst.nioBuffer(dstIndex, RECORD));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot seal page " + page + ": " + e.getMessage(), e);
    }
  }

  /**
   * Opens the sealed record at {@code src[srcIndex]}, written as {@code page} at {@code stamp}, into
   * {@code dst} at {@code dstIndex}; false (and {@code dst} undefined) when it fails its tag: a
   * corrupted, forged, moved or relabelled page, never to be passed on.
   */
  boolean open(long page, long stamp, ByteBuf src, int srcIndex, ByteBuf dst, int dstIndex) {
    if (page < 0 || page >= MAX_PAGES || stamp < 0) {
      return false;
    }
    Cipher c = ciphers.get();
    try {
      c.init(Cipher.DECRYPT_MODE, key, nonce(page, stamp));
      c.updateAAD(associatedData(page, stamp));
      c.doFinal(src.nioBuffer(srcIndex, RECORD), dst.nioBuffer(dstIndex, Pages.PAGE_SIZE));
      return true;
    } catch (AEADBadTagException e) {
      return false;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot open page " + page + ": " + e.getMessage(), e);
    }
  }
}
