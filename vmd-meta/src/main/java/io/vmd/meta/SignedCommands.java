package io.vmd.meta;

import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;

/**
 * Control-plane commands signed by their sender. Ratis does not hand the TLS peer's certificate to the
 * state machine, so each command carries the sender's certificate and an ECDSA signature over itself,
 * made with the key of that certificate. The leader checks both against the cluster's CA before the
 * command enters the log ({@link #open}); the identity then travels in the log as a {@link Caller}.
 *
 * <p>Envelope: {@code 'S'}, certificate (int length, DER), signing time (long ms), nonce (long),
 * command (int length, bytes), signature (int length, DER) over everything before it. An insecure
 * cluster's commands are {@code 'P'} and the command.
 */
final class SignedCommands {
  static final byte SIGNED = 'S';
  static final byte PLAIN = 'P';
  private static final String ALGORITHM = "SHA256withECDSA";
  /** How far a signing time may be from the leader's clock: clock skew between hosts, and retries. */
  static final long MAX_SKEW_MILLIS = 5 * 60_000;
  private static final int MAX_CERT_BYTES = 8192;
  private static final int MAX_SIGNATURE_BYTES = 512;
  private static final SecureRandom RANDOM = new SecureRandom();

  private SignedCommands() {}

  /** A refused envelope: the reason goes back to the sender, nothing enters the log. */
  static final class Refused extends IOException {
    /** For metrics: signature, certificate, clock or malformed. */
    final String reason;

    Refused(String reason, String message) {
      super(message);
      this.reason = reason;
    }
  }

  /** The envelope of {@code command}: signed with {@code tls}'s key, or plain when {@code tls} is null. */
  static byte[] seal(byte[] command, ClusterTls tls) {
    if (tls == null) {
      byte[] out = new byte[command.length + 1];
      out[0] = PLAIN;
      System.arraycopy(command, 0, out, 1, command.length);
      return out;
    }
    try {
      byte[] cert = tls.certificate().getEncoded();
      byte[] signed = MetaCodec.bytes(o -> {
        o.writeByte(SIGNED);
        o.writeInt(cert.length);
        o.write(cert);
        o.writeLong(System.currentTimeMillis());
        o.writeLong(RANDOM.nextLong());
        o.writeInt(command.length);
        o.write(command);
      });
      Signature s = Signature.getInstance(ALGORITHM);
      s.initSign(tls.privateKey());
      s.update(signed);
      byte[] sig = s.sign();
      return MetaCodec.bytes(o -> {
        o.write(signed);
        o.writeInt(sig.length);
        o.write(sig);
      });
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign a control-plane command with " + tls.identity() + ": "
          + e.getMessage(), e);
    }
  }

  /** A command and who sent it. */
  record Opened(Caller caller, byte[] command) {}

  /**
   * Checks an envelope at {@code nowMillis}: with a CA, only signed envelopes whose certificate that CA
   * issued, valid now, signed recently; without one (an insecure cluster), only plain envelopes.
   */
  static Opened open(byte[] envelope, X509Certificate ca, long nowMillis) throws Refused {
    if (envelope.length == 0) {
      throw new Refused("malformed", "empty control-plane command");
    }
    if (ca == null) {
      if (envelope[0] != PLAIN) {
        throw new Refused("malformed", "this control plane runs --insecure and takes no signed commands");
      }
      byte[] command = new byte[envelope.length - 1];
      System.arraycopy(envelope, 1, command, 0, command.length);
      return new Opened(Caller.INSECURE, command);
    }
    if (envelope[0] != SIGNED) {
      throw new Refused("signature", "unsigned control-plane command refused: this cluster requires certificates");
    }
    try {
      DataInputStream in = new DataInputStream(new ByteArrayInputStream(envelope, 1, envelope.length - 1));
      byte[] certBytes = readBlock(in, MAX_CERT_BYTES, "certificate");
      long signedAt = in.readLong();
      in.readLong(); // nonce: two identical commands still sign differently
      byte[] command = readBlock(in, envelope.length, "command");
      int signedLength = envelope.length - in.available();
      byte[] sig = readBlock(in, MAX_SIGNATURE_BYTES, "signature");
      if (in.available() != 0) {
        throw new Refused("malformed", "trailing bytes after a control-plane command's signature");
      }
      X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(certBytes));
      try {
        cert.verify(ca.getPublicKey());
      } catch (GeneralSecurityException e) {
        throw new Refused("certificate", "certificate '" + cert.getSubjectX500Principal().getName()
            + "' was not issued by this cluster's CA");
      }
      try {
        cert.checkValidity(new Date(nowMillis));
      } catch (GeneralSecurityException e) {
        throw new Refused("certificate", "certificate '" + cert.getSubjectX500Principal().getName()
            + "' is not valid now ("
            + cert.getNotBefore() + " to " + cert.getNotAfter() + ")");
      }
      if (Math.abs(nowMillis - signedAt) > MAX_SKEW_MILLIS) {
        throw new Refused("clock", "command signed " + (nowMillis - signedAt) / 1000 + " s from the leader's clock "
            + "(over " + MAX_SKEW_MILLIS / 1000 + " s): check the clocks of this host and the control plane");
      }
      Signature s = Signature.getInstance(ALGORITHM);
      s.initVerify(cert.getPublicKey());
      s.update(envelope, 0, signedLength);
      if (!s.verify(sig)) {
        throw new Refused("signature", "bad signature on a command from '"
            + cert.getSubjectX500Principal().getName() + "'");
      }
      Identity id = Identity.of(cert);
      return new Opened(new Caller(id.name(), id.role(), hosts(cert)), command);
    } catch (Refused e) {
      throw e;
    } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
      throw new Refused("malformed", "malformed signed control-plane command: " + e.getMessage());
    }
  }

  private static byte[] readBlock(DataInputStream in, int max, String what) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > max || n > in.available()) {
      throw new Refused("malformed", "control-plane command with a " + what + " of " + n + " bytes");
    }
    byte[] b = new byte[n];
    in.readFully(b);
    return b;
  }

  /** The DNS names and IP addresses a (node) certificate is valid for. */
  private static List<String> hosts(X509Certificate cert) throws CertificateParsingException {
    List<String> out = new ArrayList<>();
    Collection<List<?>> alt = cert.getSubjectAlternativeNames();
    if (alt != null) {
      for (List<?> n : alt) {
        int type = (Integer) n.get(0);
        if ((type == 2 || type == 7) && out.size() < 32) {
          out.add(String.valueOf(n.get(1)));
        }
      }
    }
    return out;
  }
}
