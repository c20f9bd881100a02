package io.vmd.client;

import io.vmd.protocol.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A namespace's page key, made when it is created and kept in the control plane only wrapped:
 * AES-256-GCM under the cluster's seal key (seal.key, held by admins and gateways, never by memory
 * servers), with the namespace's name as associated data.
 */
final class NamespaceKeys {
  private static final SecureRandom RANDOM = new SecureRandom();

  private NamespaceKeys() {}

  /** A fresh page key wrapped under {@code sealKey}: nonce (12 bytes), then the encrypted key and its tag. */
  static byte[] newWrapped(byte[] sealKey, String namespace) {
    byte[] pageKey = new byte[32];
    RANDOM.nextBytes(pageKey);
    byte[] nonce = new byte[12];
    RANDOM.nextBytes(nonce);
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(sealKey, "AES"), new GCMParameterSpec(128, nonce));
      c.updateAAD(namespace.getBytes(StandardCharsets.UTF_8));
      byte[] sealed = c.doFinal(pageKey);
      return ByteBuffer.allocate(12 + sealed.length).put(nonce).put(sealed).array();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot wrap a page key: " + e.getMessage(), e);
    }
  }

  /** The page key {@code wrapped} holds; VmdException when this seal key did not wrap it. */
  static byte[] unwrap(byte[] sealKey, String namespace, byte[] wrapped) throws VmdException {
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(sealKey, "AES"), new GCMParameterSpec(128, wrapped, 0, 12));
      c.updateAAD(namespace.getBytes(StandardCharsets.UTF_8));
      return c.doFinal(wrapped, 12, wrapped.length - 12);
    } catch (AEADBadTagException e) {
      throw new VmdException(ErrorCode.UNAUTHORIZED, "namespace '" + namespace
          + "' was sealed under another seal key than this host's seal.key");
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new VmdException(ErrorCode.INTERNAL, "cannot unwrap the page key of namespace '"
          + namespace + "': " + e.getMessage());
    }
  }
}
