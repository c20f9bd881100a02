package io.vmd.common.tls;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A cluster's certificate authority: it signs the node certificates of servers and voters (server and
 * client authentication, the hosts as subject alternative names) and the client certificates of
 * admins, gateways and servers, each naming its {@link Identity}. Keys are ECDSA P-256: small, and
 * cheap in TLS handshakes. As CockroachDB's {@code cert} commands, but signed here with BouncyCastle.
 */
public final class CertificateAuthority {
  /** The subject's O of every certificate VMD makes. */
  static final String ORGANIZATION = "vmd";
  private static final String SIGNATURE = "SHA256withECDSA";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final X509Certificate certificate;
  private final PrivateKey key;

  private CertificateAuthority(X509Certificate certificate, PrivateKey key) {
    this.certificate = certificate;
    this.key = key;
  }

  /** A certificate and its private key. */
  public record Issued(X509Certificate certificate, PrivateKey key) {}

  /** A new CA, valid for {@code lifetime} from now, its certificate self-signed. */
  public static CertificateAuthority create(Duration lifetime) {
    KeyPair pair = newKeyPair();
    X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, ORGANIZATION)
        .addRDN(BCStyle.CN, "VMD CA").build();
    try {
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      X509v3CertificateBuilder b = builder(subject, subject, pair.getPublic(), lifetime);
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
      return new CertificateAuthority(sign(b, pair.getPrivate()), pair.getPrivate());
    } catch (GeneralSecurityException | CertIOException e) {
      throw new IllegalStateException("cannot make a CA certificate: " + e.getMessage(), e);
    }
  }

  /** The CA whose certificate and key these are. */
  public static CertificateAuthority of(X509Certificate certificate, PrivateKey key) {
    if (certificate.getBasicConstraints() < 0) {
      throw new IllegalArgumentException("'" + certificate.getSubjectX500Principal().getName() + "' is not a CA certificate");
    }
    return new CertificateAuthority(certificate, key);
  }

  public X509Certificate certificate() {
    return certificate;
  }

  public PrivateKey key() {
    return key;
  }

  /**
   * A node certificate: the identity of a server (or voter) host, named by its first host, for both
   * ends of TLS, valid for every host given (IP addresses and DNS names).
   */
  public Issued issueNode(List<String> hosts, Duration lifetime) {
    return issueNode(hosts, Role.SERVER, lifetime);
  }

  /**
   * A node certificate of {@code role}: a memory server or voter ({@link Role#SERVER}), or a hypervisor
   * host's agent ({@link Role#HOST}), whose API other hosts reach at the addresses named.
   */
  public Issued issueNode(List<String> hosts, Role role, Duration lifetime) {
    if (role != Role.SERVER && role != Role.HOST) {
      throw new IllegalArgumentException("a node certificate is for a server or a host, not " + role.label());
    }
    if (hosts.isEmpty()) {
      throw new IllegalArgumentException("a node certificate needs at least one host name or address");
    }
    List<GeneralName> names = new ArrayList<>();
    for (String h : hosts) {
      names.add(isAddress(h) ? new GeneralName(GeneralName.iPAddress, h) : new GeneralName(GeneralName.dNSName, h));
    }
    return issue(new Identity(hosts.get(0), role), lifetime,
        new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth},
        new GeneralNames(names.toArray(new GeneralName[0])));
  }

  /** A client certificate: {@code identity} proves itself to servers and the control plane with it. */
  public Issued issueClient(Identity identity, Duration lifetime) {
    return issue(identity, lifetime, new KeyPurposeId[] {KeyPurposeId.id_kp_clientAuth}, null);
  }

  private Issued issue(Identity id, Duration lifetime, KeyPurposeId[] purposes, GeneralNames altNames) {
    KeyPair pair = newKeyPair();
    X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, ORGANIZATION)
        .addRDN(BCStyle.OU, id.role().label()).addRDN(BCStyle.CN, id.name()).build();
    try {
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      X509v3CertificateBuilder b = builder(X500Name.getInstance(certificate.getSubjectX500Principal().getEncoded()),
          subject, pair.getPublic(), lifetime);
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
      b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purposes));
      b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
      b.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(certificate));
      if (altNames != null) {
        b.addExtension(Extension.subjectAlternativeName, false, altNames);
      }
      return new Issued(sign(b, key), pair.getPrivate());
    } catch (GeneralSecurityException | CertIOException e) {
      throw new IllegalStateException("cannot issue a certificate for " + id + ": " + e.getMessage(), e);
    }
  }

  private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, PublicKey key, Duration lifetime) {
    if (lifetime.isNegative() || lifetime.isZero()) {
      throw new IllegalArgumentException("a certificate's lifetime must be positive");
    }
    // Back-dated a minute: hosts whose clocks differ a little still accept a certificate just made.
    Instant from = Instant.now().minusSeconds(60);
    return new JcaX509v3CertificateBuilder(issuer, new BigInteger(127, RANDOM).add(BigInteger.ONE), Date.from(from),
        Date.from(from.plus(lifetime)), subject, key);
  }

  private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey signer) throws GeneralSecurityException {
    try {
      return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder(SIGNATURE).build(signer)));
    } catch (OperatorCreationException e) {
      throw new GeneralSecurityException(e.getMessage(), e);
    }
  }

  private static KeyPair newKeyPair() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
      return g.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("no EC P-256 key generator in this JVM: " + e.getMessage(), e);
    }
  }

  /** An IPv4 or IPv6 literal (never a name lookup). */
  private static boolean isAddress(String host) {
    if (!host.matches("[0-9.]+") && !host.contains(":")) {
      return false;
    }
    try {
      InetAddress.getByName(host);
      return true;
    } catch (UnknownHostException e) {
      return false;
    }
  }
}
