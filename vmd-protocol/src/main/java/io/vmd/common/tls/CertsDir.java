package io.vmd.common.tls;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * A directory of certificates, laid out as CockroachDB's: {@code ca.crt} (and, unless kept elsewhere,
 * {@code ca.key}), {@code node.crt}/{@code node.key} for a server host, and
 * {@code client.NAME.crt}/{@code client.NAME.key} for each client identity. The directory is 0700 and
 * every key 0600, written so that no other user can read it even for a moment.
 */
public final class CertsDir {
  private static final Set<PosixFilePermission> DIR = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> KEY = PosixFilePermissions.fromString("rw-------");
  private static final Set<PosixFilePermission> CERT = PosixFilePermissions.fromString("rw-r--r--");

  private final Path dir;

  public CertsDir(Path dir) {
    this.dir = dir;
  }

  public Path path() {
    return dir;
  }

  public Path caCert() {
    return dir.resolve("ca.crt");
  }

  public Path caKey() {
    return dir.resolve("ca.key");
  }

  public Path nodeCert() {
    return dir.resolve("node.crt");
  }

  public Path nodeKey() {
    return dir.resolve("node.key");
  }

  public Path clientCert(String name) {
    return dir.resolve("client." + name + ".crt");
  }

  public Path clientKey(String name) {
    return dir.resolve("client." + name + ".key");
  }

  /** The cluster's seal key: page keys are wrapped under it. For admin and gateway hosts, never memory servers. */
  public Path sealKey() {
    return dir.resolve("seal.key");
  }

  /** Writes a new random seal key (32 bytes, hex) as a file of mode 0600; kept unless {@code overwrite}. */
  public void writeSealKey(boolean overwrite) throws IOException {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    write(sealKey(), HexFormat.of().formatHex(key) + "\n", KEY, overwrite);
  }

  /**
   * The seal key, or null when this directory has none (a memory server's); IOException when the file
   * is not 64 hex digits.
   */
  public byte[] readSealKey() throws IOException {
    if (!Files.exists(sealKey())) {
      return null;
    }
    String hex = Files.readString(sealKey(), StandardCharsets.US_ASCII).strip();
    if (!hex.matches("[0-9a-fA-F]{64}")) {
      throw new IOException(sealKey() + " is not a seal key (64 hex digits); make one with 'vmd cert create-ca'");
    }
    return HexFormat.of().parseHex(hex);
  }

  /**
   * Makes the directory (and its parents) 0700 if it does not exist; returns a warning when it exists
   * and other users may enter it, else null.
   */
  public String create() throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(DIR));
      Files.setPosixFilePermissions(dir, DIR); // the umask may have taken bits away, never added: set exactly
      return null;
    }
    Set<PosixFilePermission> p = Files.getPosixFilePermissions(dir);
    if (p.contains(PosixFilePermission.GROUP_EXECUTE) || p.contains(PosixFilePermission.OTHERS_EXECUTE)) {
      return "warning: " + dir + " is open to other users (" + PosixFilePermissions.toString(p)
          + "); keys belong in a directory of mode 0700";
    }
    return null;
  }

  /** Writes a private key as a new file of mode 0600; an existing file is kept unless {@code overwrite}. */
  public void writeKey(Path file, String pem, boolean overwrite) throws IOException {
    write(file, pem, KEY, overwrite);
  }

  /** Writes a certificate (public) as a file of mode 0644. */
  public void writeCert(Path file, String pem, boolean overwrite) throws IOException {
    write(file, pem, CERT, overwrite);
  }

  private static void write(Path file, String pem, Set<PosixFilePermission> mode, boolean overwrite) throws IOException {
    if (overwrite) {
      Files.deleteIfExists(file);
    }
    try {
      // Created with its mode: a key is never readable by others, not even between create and chmod.
      Files.createFile(file, PosixFilePermissions.asFileAttribute(mode));
    } catch (FileAlreadyExistsException e) {
      throw new FileAlreadyExistsException(file + " exists: keep it, or pass --overwrite to replace it");
    }
    Files.setPosixFilePermissions(file, mode);
    Files.writeString(file, pem, StandardCharsets.US_ASCII);
  }

  /**
   * A whole cluster's certificates for one host, in this (new) directory: a CA, a node certificate for
   * {@code hosts}, and a client certificate for each of {@code clients}; what {@code vmd up} and the
   * benchmarks run with. Existing files are kept: nothing is overwritten.
   */
  public void makeCluster(List<String> hosts, Duration lifetime, List<Identity> clients) throws IOException {
    create();
    CertificateAuthority ca = CertificateAuthority.create(lifetime);
    writeKey(caKey(), Pem.of(ca.key()), false);
    writeCert(caCert(), Pem.of(ca.certificate()), false);
    write(nodeCert(), nodeKey(), ca.issueNode(hosts, lifetime));
    if (!Files.exists(sealKey())) {
      writeSealKey(false);
    }
    for (Identity id : clients) {
      write(clientCert(id.name()), clientKey(id.name()), ca.issueClient(id, lifetime));
    }
  }

  private void write(Path cert, Path key, CertificateAuthority.Issued issued) throws IOException {
    writeKey(key, Pem.of(issued.key()), false);
    writeCert(cert, Pem.of(issued.certificate()), false);
  }

  /** A warning when a key file may be read by its group or others, else null. */
  public static String keyPermissionWarning(Path key) throws IOException {
    Set<PosixFilePermission> p = Files.getPosixFilePermissions(key);
    for (PosixFilePermission bad : new PosixFilePermission[] {PosixFilePermission.GROUP_READ,
        PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.OTHERS_WRITE}) {
      if (p.contains(bad)) {
        return "warning: private key " + key + " is readable or writable by other users ("
            + PosixFilePermissions.toString(p) + "); chmod 600 it";
      }
    }
    return null;
  }
}
