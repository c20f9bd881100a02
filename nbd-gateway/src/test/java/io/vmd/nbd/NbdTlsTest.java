package io.vmd.nbd;

import static io.vmd.nbd.GatewayFixture.ok;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.Pem;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD_OPT_STARTTLS with a certificate, against libnbd's own TLS client (GnuTLS): an openssl-made CA
 * signs the gateway's certificate for 127.0.0.1; nbdinfo and nbdcopy reach the export over
 * {@code nbds://} and verify the certificate; a client without TLS is refused.
 */
class NbdTlsTest {
  private static final long MIB = 1 << 20;
  @TempDir Path dir;

  private void openssl(String... args) throws Exception {
    String[] cmd = new String[args.length + 1];
    cmd[0] = "openssl";
    System.arraycopy(args, 0, cmd, 1, args.length);
    ok(dir, cmd);
  }

  @Test
  void libnbdReachesTheExportOverTlsAndAPlainClientIsRefused() throws Exception {
    Path certs = Files.createDirectories(dir.resolve("certs"));
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.resolve("ca-key.pem").toString(),
        "-out", certs.resolve("ca-cert.pem").toString(), "-days", "2", "-subj", "/CN=vmd-test-ca");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.resolve("server-key.pem").toString(),
        "-out", dir.resolve("server.csr").toString(), "-subj", "/CN=127.0.0.1");
    Files.writeString(dir.resolve("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        + "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
    openssl("x509", "-req", "-in", dir.resolve("server.csr").toString(), "-CA", certs.resolve("ca-cert.pem").toString(),
        "-CAkey", dir.resolve("ca-key.pem").toString(), "-CAcreateserial", "-out",
        dir.resolve("server-cert.pem").toString(), "-days", "2", "-extfile", dir.resolve("ext.cnf").toString());

    try (GatewayFixture fx = new GatewayFixture(2, 64 * MIB);
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0))
            .withTls(dir.resolve("server-cert.pem"), dir.resolve("server-key.pem")), fx.client,
            new SimpleMeterRegistry())) {
      fx.client.namespaces().create("secret", 8 * MIB, 2);
      String tlsUri = "nbds://" + gw.address() + "/secret?tls-certificates=" + certs;
      String info = ok(dir, "nbdinfo", tlsUri).out();
      assertThat(info).contains("newstyle-fixed with TLS").contains("export-size: 8388608");
      byte[] data = new byte[8 * (int) MIB];
      new Random(11).nextBytes(data);
      Path in = Files.write(dir.resolve("in.img"), data);
      ok(dir, "nbdcopy", in.toString(), tlsUri);
      Path back = dir.resolve("back.img");
      ok(dir, "nbdcopy", tlsUri, back.toString());
      assertThat(Files.readAllBytes(back)).isEqualTo(data);

      GatewayFixture.Result plain = GatewayFixture.run(dir, "nbdinfo", "nbd://" + gw.address() + "/secret");
      assertThat(plain.exit()).as("a client without TLS").isNotZero();
      // NBD_REP_ERR_TLS_REQD, which libnbd reports as ENOTSUP.
      assertThat(plain.err()).contains("server replied with error").contains("not supported");
    }
  }

  /**
   * Bytes a man in the middle appends in the clear right after the client's NBD_OPT_STARTTLS must not
   * be read as options once TLS is on (CVE-2021-3716 in nbdkit): here an injected
   * NBD_OPT_STRUCTURED_REPLY. Inside TLS, the client's first option must get the first reply.
   */
  @Test
  void plaintextSentAfterStartTlsIsDroppedNotActedOnInsideTls() throws Exception {
    CertificateAuthority ca = CertificateAuthority.create(Duration.ofDays(1));
    CertificateAuthority.Issued node = ca.issueNode(List.of("127.0.0.1"), Duration.ofDays(1));
    Path cert = Files.writeString(dir.resolve("node.crt"), Pem.of(node.certificate()));
    Path key = Files.writeString(dir.resolve("node.key"), Pem.of(node.key()));
    try (GatewayFixture fx = new GatewayFixture(1, 16 * MIB);
        NbdGateway gw = NbdGateway.start(GatewayConfig.of(new HostPort("127.0.0.1", 0)).withTls(cert, key),
            fx.client, new SimpleMeterRegistry());
        RawNbdClient raw = new RawNbdClient("127.0.0.1", gw.address().port())) {
      // STARTTLS and the injected option in one write, as they would arrive.
      raw.out.writeLong(NbdProtocol.IHAVEOPT);
      raw.out.writeInt(NbdProtocol.OPT_STARTTLS);
      raw.out.writeInt(0);
      raw.out.writeLong(NbdProtocol.IHAVEOPT);
      raw.out.writeInt(NbdProtocol.OPT_STRUCTURED_REPLY);
      raw.out.writeInt(0);
      raw.out.flush();
      RawNbdClient.OptionReply ack = raw.readOptionReply();
      assertThat(ack.option()).isEqualTo(NbdProtocol.OPT_STARTTLS);
      assertThat(ack.type()).isEqualTo(NbdProtocol.REP_ACK);

      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("ca", ca.certificate());
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      SSLContext tls = SSLContext.getInstance("TLS");
      tls.init(null, tmf.getTrustManagers(), null);
      try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(raw.socket, "127.0.0.1",
          gw.address().port(), false)) {
        s.startHandshake();
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
        DataInputStream in = new DataInputStream(s.getInputStream());
        out.writeLong(NbdProtocol.IHAVEOPT);
        out.writeInt(NbdProtocol.OPT_LIST);
        out.writeInt(0);
        out.flush();
        assertThat(in.readLong()).isEqualTo(NbdProtocol.OPTION_REPLY_MAGIC);
        assertThat(in.readInt()).as("the option the first reply inside TLS answers").isEqualTo(NbdProtocol.OPT_LIST);
      }
    }
  }
}
