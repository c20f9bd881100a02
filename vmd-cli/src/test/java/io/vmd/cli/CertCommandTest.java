package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Pem;
import io.vmd.common.tls.Role;
import io.vmd.nbd.GatewayFixture;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vmd cert}, checked with OpenSSL: the certificates chain to the CA, name what they should, and keys stay private. */
class CertCommandTest {
  @TempDir Path tmp;

  private record Run(int exit, String out, String err) {}

  private static Run vmd(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int exit = Vmd.run(args);
      return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  private Run cert(Path dir, String... args) {
    List<String> all = new ArrayList<>(List.of("cert"));
    all.addAll(List.of(args));
    all.addAll(List.of("--certs-dir", dir.toString()));
    return vmd(all.toArray(new String[0]));
  }

  private static String mode(Path p) throws Exception {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }

  private String openssl(String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("openssl"));
    cmd.addAll(List.of(args));
    return GatewayFixture.ok(tmp, cmd.toArray(new String[0])).out();
  }

  @Test
  void aCaSignsNodeAndClientCertificatesThatOpensslVerifiesAndKeysStayPrivate() throws Exception {
    Path dir = tmp.resolve("certs");
    Run ca = cert(dir, "create-ca");
    assertThat(ca.exit()).as(ca.err()).isZero();
    assertThat(mode(dir)).isEqualTo("rwx------");
    assertThat(mode(dir.resolve("ca.key"))).isEqualTo("rw-------");
    assertThat(mode(dir.resolve("ca.crt"))).isEqualTo("rw-r--r--");

    Run node = cert(dir, "create-node", "127.0.0.1", "localhost", "mem-1.example");
    assertThat(node.exit()).as(node.err()).isZero();
    assertThat(node.out()).contains("server 127.0.0.1");
    assertThat(mode(dir.resolve("node.key"))).isEqualTo("rw-------");
    String caFile = dir.resolve("ca.crt").toString();
    assertThat(openssl("verify", "-CAfile", caFile, dir.resolve("node.crt").toString())).contains(": OK");
    String nodeText = openssl("x509", "-in", dir.resolve("node.crt").toString(), "-noout", "-text");
    assertThat(nodeText).contains("IP Address:127.0.0.1", "DNS:localhost", "DNS:mem-1.example",
        "TLS Web Server Authentication", "TLS Web Client Authentication", "CA:FALSE");

    Run alice = cert(dir, "create-client", "alice", "--role", "admin");
    assertThat(alice.exit()).as(alice.err()).isZero();
    Path aliceCrt = dir.resolve("client.alice.crt");
    assertThat(openssl("verify", "-CAfile", caFile, aliceCrt.toString())).contains(": OK");
    X509Certificate c = Pem.readCertificate(aliceCrt);
    assertThat(Identity.of(c)).isEqualTo(new Identity("alice", Role.ADMIN));
    assertThat(c.getExtendedKeyUsage()).containsExactly("1.3.6.1.5.5.7.3.2"); // clientAuth only
    // The key on disk is the certificate's: what it signs, the certificate's public key verifies.
    PrivateKey key = Pem.readKey(dir.resolve("client.alice.key"));
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initSign(key);
    s.update(new byte[] {1, 2, 3});
    byte[] sig = s.sign();
    s.initVerify(c.getPublicKey());
    s.update(new byte[] {1, 2, 3});
    assertThat(s.verify(sig)).isTrue();
  }

  @Test
  void aCertificateOfAnotherCaDoesNotVerify() throws Exception {
    Path ours = tmp.resolve("ours");
    Path theirs = tmp.resolve("theirs");
    assertThat(cert(ours, "create-ca").exit()).isZero();
    assertThat(cert(theirs, "create-ca").exit()).isZero();
    assertThat(cert(theirs, "create-client", "mallory", "--role", "admin").exit()).isZero();
    GatewayFixture.Result r = GatewayFixture.run(tmp, "openssl", "verify", "-CAfile", ours.resolve("ca.crt").toString(),
        theirs.resolve("client.mallory.crt").toString());
    assertThat(r.exit()).isNotZero();
  }

  @Test
  void badInputGetsOneLineAndLosesNothing() throws Exception {
    Path dir = tmp.resolve("certs");
    assertThat(cert(dir, "create-ca").exit()).isZero();
    byte[] key = Files.readAllBytes(dir.resolve("ca.key"));

    Run again = cert(dir, "create-ca");
    assertThat(again.exit()).isEqualTo(1);
    assertThat(again.err().strip().lines()).hasSize(1);
    assertThat(again.err()).contains("exists", "--overwrite");
    assertThat(Files.readAllBytes(dir.resolve("ca.key"))).isEqualTo(key);

    Run role = cert(dir, "create-client", "bob", "--role", "root");
    assertThat(role.exit()).isEqualTo(2);
    assertThat(role.err()).contains("unknown role 'root'");
    assertThat(dir.resolve("client.bob.key")).doesNotExist();

    Run name = cert(dir, "create-client", "../bob", "--role", "admin");
    assertThat(name.exit()).isEqualTo(1);
    assertThat(name.err().strip().lines()).hasSize(1);
    assertThat(tmp.resolve("bob.key")).doesNotExist();

    Run noCa = cert(tmp.resolve("empty"), "create-node", "127.0.0.1");
    assertThat(noCa.exit()).isEqualTo(1);
    assertThat(noCa.err()).contains("no CA", "vmd cert create-ca");

    Files.setPosixFilePermissions(dir.resolve("ca.key"), PosixFilePermissions.fromString("rw-r--r--"));
    Run list = cert(dir, "list");
    assertThat(list.exit()).isZero();
    assertThat(list.out()).contains("ca.crt", "CA");
    // --json: the documented shape, read back strictly.
    Run json = vmd("--json", "cert", "list", "--certs-dir", dir.toString());
    VmdProcesses.Certificates certs = VmdProcesses.shape(json.out(), VmdProcesses.Certificates.class);
    assertThat(certs.certificates()).extracting(CertCommand.CertFile::file).contains("ca.crt");
    assertThat(list.err()).contains("warning: private key", "ca.key", "chmod 600");
  }
}
