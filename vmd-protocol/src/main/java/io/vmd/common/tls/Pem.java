package io.vmd.common.tls;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;

/** PEM text of certificates and private keys (PKCS#8, what Netty, Ratis' gRPC and OpenSSL all read). */
public final class Pem {
  private Pem() {}

  public static String of(X509Certificate cert) {
    return write(cert);
  }

  public static String of(PrivateKey key) {
    try {
      return write(new JcaPKCS8Generator(key, null).generate());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String write(Object o) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(out)) {
      w.writeObject(o);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString();
  }

  /** The first certificate in {@code file}; an IOException that names the file when there is none. */
  public static X509Certificate readCertificate(Path file) throws IOException {
    Object o = read(file);
    if (!(o instanceof X509CertificateHolder h)) {
      throw new IOException(file + ": not a PEM certificate");
    }
    try {
      return new JcaX509CertificateConverter().getCertificate(h);
    } catch (CertificateException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  /** The private key in {@code file} (PKCS#8, or a traditional EC/RSA key pair). */
  public static PrivateKey readKey(Path file) throws IOException {
    Object o = read(file);
    JcaPEMKeyConverter keys = new JcaPEMKeyConverter();
    if (o instanceof PrivateKeyInfo info) {
      return keys.getPrivateKey(info);
    }
    if (o instanceof PEMKeyPair pair) {
      return keys.getKeyPair(pair).getPrivate();
    }
    throw new IOException(file + ": not an unencrypted PEM private key");
  }

  private static Object read(Path file) throws IOException {
    try (PEMParser p = new PEMParser(Files.newBufferedReader(file, StandardCharsets.US_ASCII))) {
      Object o = p.readObject();
      if (o == null) {
        throw new IOException(file + ": no PEM object in it");
      }
      return o;
    }
  }
}
