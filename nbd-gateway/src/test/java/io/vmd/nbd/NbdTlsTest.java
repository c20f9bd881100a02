package io.vmd.nbd;

import static io.vmd.nbd.GatewayFixture.ok;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.common.HostPort;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
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
}
