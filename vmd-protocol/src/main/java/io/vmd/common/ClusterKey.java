package io.vmd.common;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The cluster's shared secret. With it, HELLO becomes a mutual challenge: each side sends a fresh
 * random nonce and proves it holds the key by an HMAC-SHA256 over both nonces and its role, so neither
 * a client nor a server without the key can take part, and a recorded exchange cannot be replayed.
 * The key never crosses the wire. (It authenticates; it does not encrypt: run the cluster on a private
 * network, or put it behind TLS.)
 */
public final class ClusterKey {
  public static final int NONCE_BYTES = 32;
  public static final int PROOF_BYTES = 32;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SecretKeySpec key;

  private ClusterKey(byte[] secret) {
    if (secret.length < 16) {
      throw new IllegalArgumentException("a cluster key needs at least 16 bytes, got " + secret.length);
    }
    this.key = new SecretKeySpec(secret, "HmacSHA256");
  }

  public static ClusterKey of(byte[] secret) {
    return new ClusterKey(secret.clone());
  }

  /** The key in {@code file}: its bytes, with a trailing newline dropped (as `openssl rand -hex 32 > f` writes). */
  public static ClusterKey read(Path file) throws IOException {
    byte[] b = Files.readAllBytes(file);
    int n = b.length;
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r')) {
      n--;
    }
    try {
      return new ClusterKey(Arrays.copyOf(b, n));
    } catch (IllegalArgumentException e) {
      throw new IOException("cluster key file " + file + ": " + e.getMessage());
    }
  }

  public static byte[] nonce() {
    byte[] n = new byte[NONCE_BYTES];
    RANDOM.nextBytes(n);
    return n;
  }

  /** HMAC(key, role || first || second): a server signs ("server", client nonce, server nonce), a client the reverse. */
  public byte[] proof(String role, byte[] first, byte[] second) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(key);
      mac.update(role.getBytes(StandardCharsets.US_ASCII));
      mac.update(first);
      mac.update(second);
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
    }
  }

  /** Compares in constant time. */
  public static boolean same(byte[] a, byte[] b) {
    return MessageDigest.isEqual(a, b);
  }
}
