package io.vmd.common.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.vmd.common.HostPort;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * One process's side of the cluster's mutual TLS: its own certificate and key, and the cluster's CA
 * as the only trust. TLS 1.3 only. Servers require a client certificate; clients check that the
 * server's certificate names the address they dialled. Who a peer is comes from its certificate
 * ({@link #peer}), never from what it sends.
 */
public final class ClusterTls {
  private static final String[] PROTOCOLS = {"TLSv1.3"};

  private final X509Certificate ca;
  private final X509Certificate certificate;
  private final PrivateKey key;
  private final Identity identity;
  private final SslContext server;
  private final SslContext client;
  private final List<String> warnings;

  private ClusterTls(X509Certificate ca, X509Certificate certificate, PrivateKey key, SslContext server,
      SslContext client, List<String> warnings) {
    this.ca = ca;
    this.certificate = certificate;
    this.key = key;
    this.identity = Identity.of(certificate);
    this.server = server;
    this.client = client;
    this.warnings = warnings;
  }

  /** This process's TLS from its certificate, key and the CA, all PEM. */
  public static ClusterTls of(X509Certificate ca, X509Certificate cert, PrivateKey key) {
    try {
      SslContext server = SslContextBuilder.forServer(key, cert).trustManager(ca).clientAuth(ClientAuth.REQUIRE)
          .protocols(PROTOCOLS).build();
      SslContext client = SslContextBuilder.forClient().keyManager(key, cert).trustManager(ca)
          .protocols(PROTOCOLS).build();
      return new ClusterTls(ca, cert, key, server, client, List.of());
    } catch (SSLException e) {
      throw new IllegalArgumentException("cannot use the certificate '" + cert.getSubjectX500Principal().getName()
          + "': " + e.getMessage(), e);
    }
  }

  /**
   * Loads {@code name}.crt and {@code name}.key (e.g. "node", "client.alice") and ca.crt from
   * {@code dir}; one clear error naming what is missing, and a warning for a key others may read.
   */
  public static ClusterTls load(CertsDir dir, String name) throws IOException {
    Path cert = dir.path().resolve(name + ".crt");
    Path key = dir.path().resolve(name + ".key");
    for (Path p : new Path[] {dir.caCert(), cert, key}) {
      if (!Files.isReadable(p)) {
        throw new IOException("no " + p + ": make the cluster's certificates with 'vmd cert' (create-ca, "
            + "create-node HOST, create-client NAME --role ROLE)");
      }
    }
    X509Certificate c = Pem.readCertificate(cert);
    try {
      c.checkValidity();
    } catch (CertificateException e) {
      throw new IOException(cert + " is not valid now (" + c.getNotBefore() + " to " + c.getNotAfter() + ")");
    }
    List<String> warnings = new ArrayList<>();
    String w = CertsDir.keyPermissionWarning(key);
    if (w != null) {
      warnings.add(w);
    }
    ClusterTls t = of(Pem.readCertificate(dir.caCert()), c, Pem.readKey(key));
    return new ClusterTls(t.ca, t.certificate, t.key, t.server, t.client, List.copyOf(warnings));
  }

  /** Which TLS implementation runs: BoringSSL through netty-tcnative where it loads, else the JDK's. */
  public static String provider() {
    return OpenSsl.isAvailable() ? OpenSsl.versionString() + " (netty-tcnative)" : "the JDK's SSLEngine";
  }

  /** Who this process is, as its certificate says. */
  public Identity identity() {
    return identity;
  }

  /** The cluster's CA: the only issuer this process trusts. */
  public X509Certificate caCertificate() {
    return ca;
  }

  /** This process's own certificate. */
  public X509Certificate certificate() {
    return certificate;
  }

  /**
   * This process's private key, for a TLS stack that builds its own contexts (Ratis's shaded gRPC)
   * and for signing what it sends the control plane; never written anywhere.
   */
  public PrivateKey privateKey() {
    return key;
  }

  /**
   * This process's certificate and key for a TLS stack other than Netty's own (gRPC's credentials):
   * key managers of an in-memory key store that never leaves the process.
   */
  public KeyManager[] keyManagers() {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      char[] none = new char[0];
      store.setKeyEntry("self", key, none, new Certificate[] {certificate, ca});
      KeyManagerFactory f = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      f.init(store, none);
      return f.getKeyManagers();
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot hold this process's key: " + e.getMessage(), e);
    }
  }

  /** Trust managers that trust the cluster's CA and nothing else. */
  public TrustManager[] trustManagers() {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setCertificateEntry("ca", ca);
      TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      f.init(store);
      return f.getTrustManagers();
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot trust the cluster's CA: " + e.getMessage(), e);
    }
  }

  /** What loading found worth saying (a key readable by others). */
  public List<String> warnings() {
    return warnings;
  }

  /** The server end of a new connection: it requires the peer's certificate. */
  public SslHandler serverHandler(ByteBufAllocator alloc) {
    return server.newHandler(alloc);
  }

  /** The client end of a connection to {@code peer}: the server's certificate must name that address. */
  public SslHandler clientHandler(ByteBufAllocator alloc, HostPort peer) {
    SslHandler h = client.newHandler(alloc, peer.host(), peer.port());
    SSLEngine engine = h.engine();
    SSLParameters p = engine.getSSLParameters();
    p.setEndpointIdentificationAlgorithm("HTTPS");
    engine.setSSLParameters(p);
    return h;
  }

  /** The identity of the peer at the other end of a completed handshake. */
  public static Identity peer(SslHandler h) throws SSLPeerUnverifiedException {
    return peer(h.engine().getSession());
  }

  /** The identity of the peer of a TLS session (another stack's: gRPC's); null session: none. */
  public static Identity peer(SSLSession session) throws SSLPeerUnverifiedException {
    Certificate[] chain = session == null ? new Certificate[0] : session.getPeerCertificates();
    if (chain.length == 0 || !(chain[0] instanceof X509Certificate x)) {
      throw new SSLPeerUnverifiedException("no X.509 certificate from the peer");
    }
    return Identity.of(x);
  }
}
