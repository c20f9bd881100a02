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
  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

  PageSeal(int namespace, byte[] key) {
    if (key.length != 32) {
      throw new IllegalArgumentException("a page key is 32 bytes, not " + key.length);
    }
    this.namespace = namespace;
    this.key = new SecretKeySpec(key, "AES");
  }

  /**
   * One thread's cipher and heap arrays. The JDK's AES-GCM intrinsics work on arrays: copying a page
   * in and out of Netty's direct buffers and sealing on the heap beats handing it direct buffers
   * (per page sealed and opened: 1.30 against 1.40 µs on JDK 17, 0.85 against 1.50 on JDK 25).
   */
  private static final class Scratch {
    final Cipher cipher;
    final byte[] plain = new byte[Pages.PAGE_SIZE];
    final byte[] record = new byte[RECORD];
    final byte[] nonce = new byte[12];
    final byte[] associatedData = new byte[20];

    Scratch() {
      try {
        cipher = Cipher.getInstance("AES/GCM/NoPadding");
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("no AES-GCM in this JVM: " + e.getMessage(), e);
      }
    }

    /** Fills nonce and associated data for this write; GCMParameterSpec copies the nonce. */
    GCMParameterSpec prepare(int namespace, long page, long stamp) {
      ByteBuffer.wrap(nonce).putInt((int) (page >>> 1)).putLong((page & 1) << 63 | stamp);
      ByteBuffer.wrap(associatedData).putInt(namespace).putLong(page).putLong(stamp);
      return new GCMParameterSpec(128, nonce);
    }
  }

  /** Writes the sealed record of the page at {@code src[srcIndex]} into {@code dst} at {@code dstIndex}. */
  void seal(long page, long stamp, ByteBuf src, int srcIndex, ByteBuf dst, int dstIndex) {
    if (page < 0 || page >= MAX_PAGES || stamp < 0) {
      throw new IllegalArgumentException("page " + page + " or stamp " + stamp + " outside what a nonce holds");
    }
    Scratch s = scratch.get();
    Cipher c = s.cipher;
    try {
      c.init(Cipher.ENCRYPT_MODE, key, s.prepare(namespace, page, stamp));
      c.updateAAD(s.associatedData);
      src.getBytes(srcIndex, s.plain);
      c.doFinal(s.plain, 0, Pages.PAGE_SIZE, s.record, 0);
      dst.setBytes(dstIndex, s.record);
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
    Scratch s = scratch.get();
    Cipher c = s.cipher;
    try {
      c.init(Cipher.DECRYPT_MODE, key, s.prepare(namespace, page, stamp));
      c.updateAAD(s.associatedData);
      src.getBytes(srcIndex, s.record);
      c.doFinal(s.record, 0, RECORD, s.plain, 0);
      dst.setBytes(dstIndex, s.plain);
      return true;
    } catch (AEADBadTagException e) {
      return false;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot open page " + page + ": " + e.getMessage(), e);
    }
  }
}
