package io.vmd.migration.qemu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The directory QEMU's {@code tls-creds-x509} object reads for one end of a migration stream:
 * ca-cert.pem, and END-cert.pem and END-key.pem where END is "client" (the source) or "server" (the
 * destination). Made from a host's node certificate, so both ends show it and check the other's
 * against the cluster's CA.
 */
public final class QemuTlsFiles {
  private QemuTlsFiles() {}

  /** Writes {@code dir} (0700, its key 0600) from the PEM files given; returns it. */
  public static Path write(Path dir, String end, Path caCert, Path cert, Path key) throws IOException {
    if (!end.equals("client") && !end.equals("server")) {
      throw new IllegalArgumentException("a migration stream's end is client or server, not " + end);
    }
    for (Path p : new Path[] {caCert, cert, key}) {
      if (!Files.isReadable(p)) {
        throw new IOException("no " + p + ": a secure migration runs its stream over TLS with this host's node "
            + "certificate (vmd cert create-node HOST --role host), or say --insecure");
      }
    }
    Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    Files.copy(caCert, dir.resolve("ca-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
    Files.copy(cert, dir.resolve(end + "-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
    Path keyFile = dir.resolve(end + "-key.pem");
    Files.deleteIfExists(keyFile);
    Files.createFile(keyFile, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.write(keyFile, Files.readAllBytes(key));
    return dir;
  }
}
