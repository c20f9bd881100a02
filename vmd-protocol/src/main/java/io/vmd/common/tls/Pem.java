package io.vmd.common.tls;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.interfaces.ECPrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x9.ECNamedCurveTable;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.math.ec.ECPoint;
import org.bouncycastle.util.io.pem.PemObject;

/** PEM text of certificates and private keys (PKCS#8, what Netty, Ratis' gRPC and OpenSSL all read). */
public final class Pem {
  private Pem() {}

  public static String of(X509Certificate cert) {
    return write(cert);
  }

  /**
   * PKCS#8 PEM of {@code key}. An EC key also carries its public point (RFC 5915's optional field):
   * the JDK leaves it out, and GnuTLS (libnbd, QEMU) refuses a key file without it.
   */
  public static String of(PrivateKey key) {
    try {
      if (key instanceof ECPrivateKey ec) {
        return write(new PemObject("PRIVATE KEY", withPublicPoint(ec).getEncoded()));
      }
      return write(new JcaPKCS8Generator(key, null).generate());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static PrivateKeyInfo withPublicPoint(ECPrivateKey key) throws IOException {
    PrivateKeyInfo info = PrivateKeyInfo.getInstance(key.getEncoded());
    ASN1ObjectIdentifier curve = ASN1ObjectIdentifier.getInstance(info.getPrivateKeyAlgorithm().getParameters());
    X9ECParameters params = ECNamedCurveTable.getByOID(curve);
    ECPoint q = params.getG().multiply(key.getS()).normalize();
    org.bouncycastle.asn1.sec.ECPrivateKey inner = new org.bouncycastle.asn1.sec.ECPrivateKey(
        params.getN().bitLength(), key.getS(), new DERBitString(q.getEncoded(false)), null);
    return new PrivateKeyInfo(new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey, curve), inner);
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
