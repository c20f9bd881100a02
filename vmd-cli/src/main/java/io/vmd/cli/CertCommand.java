package io.vmd.cli;

import io.vmd.common.tls.CertificateAuthority;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Pem;
import io.vmd.common.tls.Role;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.NoSuchFileException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code vmd cert}: the cluster's certificates, as CockroachDB's {@code cockroach cert}. One CA per
 * cluster; a node certificate per server host; a client certificate per admin, gateway or server
 * identity. Keys are written 0600 in a 0700 directory.
 */
@Command(name = "cert", mixinStandardHelpOptions = true,
    description = "Make the cluster's certificates: a CA, node certificates for server hosts, client "
        + "certificates for admins, gateways and servers.",
    subcommands = {CertCommand.CreateCa.class, CertCommand.CreateNode.class, CertCommand.CreateClient.class,
      CertCommand.ListCerts.class})
final class CertCommand {
  @ParentCommand Vmd vmd;

  /** Where certificates and keys are: the global --certs-dir ($VMD_CERTS_DIR), else ~/.vmd/certs. */
  Path certsDir() {
    return vmd.certsDir != null && !vmd.certsDir.toString().isBlank() ? vmd.certsDir
        : Path.of(System.getProperty("user.home"), ".vmd", "certs");
  }

  @Option(names = "--ca-key", scope = CommandLine.ScopeType.INHERIT, paramLabel = "FILE",
      description = "The CA's private key, e.g. kept off the hosts (default: ca.key in the certs directory).")
  Path caKey;

  @Option(names = "--overwrite", scope = CommandLine.ScopeType.INHERIT,
      description = "Replace certificates and keys that exist (default: refuse).")
  boolean overwrite;

  CertsDir dir(PrintWriter err) throws IOException {
    CertsDir d = new CertsDir(certsDir());
    String warning = d.create();
    if (warning != null) {
      err.println(warning);
    }
    return d;
  }

  Path caKeyFile(CertsDir d) {
    return caKey != null ? caKey : d.caKey();
  }

  /** The CA of this directory (ca.crt and its key); one clear line when it is missing or unreadable. */
  CertificateAuthority ca(CertsDir d, PrintWriter err) throws IOException {
    Path cert = d.caCert();
    Path key = caKeyFile(d);
    if (!Files.exists(cert) || !Files.exists(key)) {
      throw new IllegalArgumentException("no CA in " + d.path() + " (" + (Files.exists(cert) ? key : cert)
          + " is missing): make one with 'vmd cert create-ca', or name its key with --ca-key");
    }
    String warning = CertsDir.keyPermissionWarning(key);
    if (warning != null) {
      err.println(warning);
    }
    return CertificateAuthority.of(Pem.readCertificate(cert), Pem.readKey(key));
  }

  /** Issues a certificate with this directory's CA, writes it and its key where the functions say, prints it. */
  void issue(CommandSpec spec, Function<CertificateAuthority, CertificateAuthority.Issued> how,
      Function<CertsDir, Path> certFile, Function<CertsDir, Path> keyFile) throws IOException {
    PrintWriter err = spec.commandLine().getErr();
    CertsDir d = dir(err);
    CertificateAuthority.Issued issued = how.apply(ca(d, err));
    d.writeKey(keyFile.apply(d), Pem.of(issued.key()), overwrite);
    d.writeCert(certFile.apply(d), Pem.of(issued.certificate()), overwrite);
    written(spec, List.of(new CertFile(certFile.apply(d).toString(), Identity.of(issued.certificate()).toString(),
        expiry(issued.certificate()))));
  }

  /** A certificate file: what cert create-* wrote and cert list shows ({@code {"certificates":[...]}}). */
  record CertFile(String file, String identity, String expires) {}

  void written(CommandSpec spec, List<CertFile> files) {
    Output.list(spec.commandLine().getOut(), vmd.json, "certificates", files, CertFile.class);
  }

  static String expiry(X509Certificate c) {
    return c.getNotAfter().toInstant().toString();
  }

  @Command(name = "create-ca", mixinStandardHelpOptions = true,
      description = "Make the cluster's certificate authority: ca.crt (give it to every host) and its key; and "
          + "seal.key, under which namespaces' page keys are wrapped (give it to admin and gateway hosts only, "
          + "never to memory servers).")
  static final class CreateCa implements Callable<Integer> {
    @ParentCommand CertCommand cert;
    @Spec CommandSpec spec;

    @Option(names = "--lifetime", defaultValue = "3650d", converter = LifetimeConverter.class, paramLabel = "DAYS",
        description = "How long the CA is valid, in days (d) or years (y) (default: ${DEFAULT-VALUE}).")
    Duration lifetime;

    @Override
    public Integer call() throws Exception {
      PrintWriter err = spec.commandLine().getErr();
      CertsDir d = cert.dir(err);
      CertificateAuthority ca = CertificateAuthority.create(lifetime);
      Path key = cert.caKeyFile(d);
      d.writeKey(key, Pem.of(ca.key()), cert.overwrite);
      d.writeCert(d.caCert(), Pem.of(ca.certificate()), cert.overwrite);
      List<CertFile> t = new ArrayList<>(List.of(new CertFile(d.caCert().toString(), "CA", expiry(ca.certificate())),
          new CertFile(key.toString(), "CA key", null)));
      // Never replaced, not even with --overwrite: every sealed namespace's key is wrapped under it.
      if (!Files.exists(d.sealKey())) {
        d.writeSealKey(false);
        t.add(new CertFile(d.sealKey().toString(), "seal key", null));
      }
      cert.written(spec, t);
      return 0;
    }
  }

  @Command(name = "create-node", mixinStandardHelpOptions = true,
      description = "Make a node's certificate (node.crt, node.key), valid for each HOST given: its names and "
          + "addresses as clients and peers reach it. Its identity is the first HOST. A memory server or control-plane "
          + "voter is --role server; a hypervisor host's agent (vmd host) is --role host.")
  static final class CreateNode implements Callable<Integer> {
    @ParentCommand CertCommand cert;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "HOST", arity = "1..*", description = "Host names and IP addresses of the node.")
    List<String> hosts;

    @Option(names = "--role", defaultValue = "server", paramLabel = "server|host", converter = RoleConverter.class,
        description = "server (a memory server or voter) or host (a hypervisor host's agent) (default: ${DEFAULT-VALUE}).")
    Role role;

    @Option(names = "--lifetime", defaultValue = "1825d", converter = LifetimeConverter.class, paramLabel = "DAYS",
        description = "How long the certificate is valid, in days (d) or years (y) (default: ${DEFAULT-VALUE}).")
    Duration lifetime;

    @Override
    public Integer call() throws Exception {
      if (role != Role.SERVER && role != Role.HOST) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--role: a node is a server or a host, not "
            + role.label() + " (vmd cert create-client for the others)");
      }
      cert.issue(spec, ca -> ca.issueNode(hosts, role, lifetime), CertsDir::nodeCert, CertsDir::nodeKey);
      return 0;
    }
  }

  @Command(name = "create-client", mixinStandardHelpOptions = true,
      description = "Make a client certificate (client.NAME.crt, client.NAME.key) for an admin, a gateway or "
          + "a server identity.")
  static final class CreateClient implements Callable<Integer> {
    @ParentCommand CertCommand cert;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "The identity's name (letters, digits, '.', '_', ':', '-').")
    String name;

    @Option(names = "--role", required = true, paramLabel = "admin|gateway|server|nbd", converter = RoleConverter.class,
        description = "What its holder may do: admin (namespaces, membership, --force), gateway (its own leases),"
            + " server (register and report itself), nbd (open the namespaces granted to it through a gateway"
            + " run with --tls-verify-peer; nothing else).")
    Role role;

    @Option(names = "--lifetime", defaultValue = "1825d", converter = LifetimeConverter.class, paramLabel = "DAYS",
        description = "How long the certificate is valid, in days (d) or years (y) (default: ${DEFAULT-VALUE}).")
    Duration lifetime;

    @Override
    public Integer call() throws Exception {
      Identity id = new Identity(name, role);
      cert.issue(spec, ca -> ca.issueClient(id, lifetime), d -> d.clientCert(name), d -> d.clientKey(name));
      return 0;
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true,
      description = "Show the certificates in the certs directory: identity and expiry of each.")
  static final class ListCerts implements Callable<Integer> {
    @ParentCommand CertCommand cert;
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      PrintWriter err = spec.commandLine().getErr();
      List<CertFile> out = new ArrayList<>();
      try (DirectoryStream<Path> certs = Files.newDirectoryStream(cert.certsDir(), "*.crt")) {
        for (Path p : certs) {
          X509Certificate c = Pem.readCertificate(p);
          String who = c.getBasicConstraints() >= 0 ? "CA" : Identity.of(c).toString();
          boolean expired = c.getNotAfter().toInstant().isBefore(Instant.now());
          out.add(new CertFile(p.getFileName().toString(), who, expiry(c) + (expired ? " (expired)" : "")));
          Path key = p.resolveSibling(p.getFileName().toString().replaceAll("\\.crt$", ".key"));
          String warning = Files.exists(key) ? CertsDir.keyPermissionWarning(key) : null;
          if (warning != null) {
            err.println(warning);
          }
        }
      } catch (NoSuchFileException e) {
        throw new IllegalArgumentException("no certs directory " + cert.certsDir() + ": make one with 'vmd cert create-ca'");
      }
      cert.written(spec, out);
      return 0;
    }
  }

  static final class RoleConverter implements CommandLine.ITypeConverter<Role> {
    @Override
    public Role convert(String value) {
      try {
        return Role.parse(value);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }

  /** Days ({@code 365d}) or years ({@code 5y}). */
  static final class LifetimeConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      String v = value.trim().toLowerCase(Locale.ROOT);
      long n;
      try {
        n = Long.parseLong(v.replaceAll("[dy]$", ""));
      } catch (NumberFormatException e) {
        n = -1;
      }
      if (n <= 0 || n > 100 * 365) {
        throw new CommandLine.TypeConversionException("lifetime '" + value + "': a number of days (365d) or years (5y)");
      }
      return v.endsWith("y") ? Duration.ofDays(365 * n) : Duration.ofDays(n);
    }
  }
}
