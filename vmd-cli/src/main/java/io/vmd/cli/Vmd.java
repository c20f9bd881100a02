package io.vmd.cli;

import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.client.VmdException;
import io.vmd.common.ClusterKey;
import io.vmd.common.HostPort;
import io.vmd.common.RoleMetrics;
import io.vmd.common.Sizes;
import io.vmd.common.tls.CertsDir;
import io.vmd.common.tls.ClusterTls;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine;

/** The {@code vmd} command: every role, namespace administration and (later) benchmarks. */
@Command(
    name = "vmd",
    mixinStandardHelpOptions = true,
    versionProvider = Vmd.Version.class,
    defaultValueProvider = CommandLine.PropertiesDefaultProvider.class,
    description = {
      "VMD: cluster memory as portable VM swap.",
      "Defaults for any option can be set in a properties file: $VMD_CONFIG if set, else ~/.vmd.properties, else "
          + "/etc/vmd/vmd.properties. A key is an option's name (meta=h1:7300,h2:7300,h3:7300), or the command's "
          + "name before it for one command alone (vmd.server.memory=16G)."
    },
    subcommands = {UpCommand.class, MetaCommand.class, ServerCommand.class, GatewayCommand.class, NsCommand.class,
      ServersCommand.class, ClusterCommand.class, VmCommand.class, MigrateCommand.class,
      BenchCommand.class, AdviseCommand.class, CertCommand.class, LabCommand.class, HostCommand.class,
      CommandLine.HelpCommand.class})
public final class Vmd {

  @Option(names = "--meta", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT,...",
      defaultValue = "${env:VMD_META}",
      description = "The control plane's voters, any of them, in any order (default: $VMD_META).")
  String meta;

  @Option(names = "--cluster", scope = ScopeType.INHERIT, defaultValue = "${env:VMD_CLUSTER:-vmd}",
      description = "Cluster name checked at connect (default: ${DEFAULT-VALUE}).")
  String cluster;

  @Option(names = "--cluster-key-file", scope = ScopeType.INHERIT, paramLabel = "FILE",
      defaultValue = "${env:VMD_CLUSTER_KEY_FILE}",
      description = "The cluster's shared secret (at least 16 bytes): servers require it of clients and prove"
          + " it to them (default: $VMD_CLUSTER_KEY_FILE; none: an open cluster).")
  Path clusterKeyFile;

  /** The cluster key named on the command line, or null. */
  ClusterKey clusterKey() {
    if (clusterKeyFile == null || clusterKeyFile.toString().isBlank()) {
      return null;
    }
    try {
      return ClusterKey.read(clusterKeyFile);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the cluster key: " + e.getMessage());
    }
  }

  @Option(names = "--certs-dir", scope = ScopeType.INHERIT, paramLabel = "DIR", defaultValue = "${env:VMD_CERTS_DIR}",
      description = "The cluster's certificates (vmd cert): every link runs mutual TLS with them, and the control "
          + "plane authorizes each command by its certificate (default: $VMD_CERTS_DIR; vmd cert uses ~/.vmd/certs).")
  Path certsDir;

  @Option(names = "--insecure", scope = ScopeType.INHERIT, defaultValue = "${env:VMD_INSECURE:-false}",
      description = "Run without certificates: no TLS and no authentication, so anyone who reaches a port can "
          + "read and change the cluster's memory. For a test host of your own only (default: $VMD_INSECURE).")
  boolean insecure;

  @Option(names = "--identity", scope = ScopeType.INHERIT, paramLabel = "NAME",
      defaultValue = "${env:VMD_IDENTITY:-admin}",
      description = "Whose client certificate (client.NAME.crt in --certs-dir) this command uses "
          + "(default: $VMD_IDENTITY, else ${DEFAULT-VALUE}).")
  String identity;

  /** This command's TLS as a client (client.IDENTITY); null only with --insecure. */
  ClusterTls clientTls() {
    return tls("client." + identity);
  }

  /** A server's or voter's TLS (its node certificate); null only with --insecure. */
  ClusterTls nodeTls() {
    return tls("node");
  }

  /**
   * What a daemon checks before anything else: certificates or --insecure, never neither nor both; and
   * without certificates, a loud warning on stderr.
   */
  void requireSecurityChoice(String role) {
    checkSecurityChoice();
    if (insecure) {
      System.err.println("WARNING: this " + role + " runs --insecure: no TLS and no authentication; anyone who can "
          + "reach its port can read and change the memory of the cluster's VMs");
    }
  }

  /** The cluster's CA certificate (ca.crt in --certs-dir); an error without certificates. */
  Path caCertificate() {
    if (noCertificates()) {
      throw new IllegalArgumentException("checking NBD clients' certificates needs the cluster's CA: give --certs-dir");
    }
    return new CertsDir(certsDir).caCert();
  }

  /** The cluster's seal key (seal.key in --certs-dir) when this host holds one, else null. */
  byte[] sealKey() {
    if (noCertificates()) {
      return null;
    }
    try {
      CertsDir d = new CertsDir(certsDir);
      if (Files.exists(d.sealKey())) {
        String w = CertsDir.keyPermissionWarning(d.sealKey());
        if (w != null) {
          System.err.println(w);
        }
      }
      return d.readSealKey();
    } catch (IOException e) {
      throw new IllegalArgumentException(e.getMessage());
    }
  }

  boolean noCertificates() {
    return certsDir == null || certsDir.toString().isBlank();
  }

  private void checkSecurityChoice() {
    boolean none = noCertificates();
    if (none && !insecure) {
      throw new IllegalArgumentException("no certificates: give --certs-dir DIR (or VMD_CERTS_DIR) with the "
          + "cluster's certificates (make them with 'vmd cert create-ca', 'create-node HOST', "
          + "'create-client NAME --role ROLE'), or run without TLS and authentication with --insecure");
    }
    if (!none && insecure) {
      throw new IllegalArgumentException("both --certs-dir (or VMD_CERTS_DIR) and --insecure given: choose one");
    }
  }

  private ClusterTls tls(String name) {
    checkSecurityChoice();
    if (noCertificates()) {
      return null;
    }
    try {
      ClusterTls t = ClusterTls.load(new CertsDir(certsDir), name);
      t.warnings().forEach(System.err::println);
      return t;
    } catch (IOException e) {
      throw new IllegalArgumentException(e.getMessage());
    }
  }

  @Option(names = "--json", scope = ScopeType.INHERIT, description = "Print JSON instead of a table.")
  boolean json;

  @Option(names = "--max-queued", scope = ScopeType.INHERIT, defaultValue = "64M", paramLabel = "SIZE",
      converter = SizeConverter.class,
      description = "Most bytes of requests queued for one server that does not take them; past it they fail "
          + "as if it were down (default: ${DEFAULT-VALUE}).")
  long maxQueued;

  @Option(names = "--timeout", scope = ScopeType.INHERIT, defaultValue = "10s", paramLabel = "DURATION",
      converter = DurationConverter.class, description = "Request timeout (default: ${DEFAULT-VALUE}).")
  Duration timeout;

  List<HostPort> metaList() {
    if (meta == null || meta.isBlank()) {
      throw new CommandLine.ParameterException(new CommandLine(this),
          "no control plane: pass --meta HOST:PORT,... or set VMD_META (vmd up prints it)");
    }
    return HostPort.parseList(meta);
  }

  VmdClient connect() throws VmdException {
    return connect(1);
  }

  /** A client with {@code ioThreads} event loops (admin commands need one; a gateway one per core). */
  VmdClient connect(int ioThreads) throws VmdException {
    return VmdClient.connect(clientConfig(ioThreads), "cli");
  }

  /** As above, owning namespaces under an id that starts with {@code ownerPrefix}. */
  VmdClient connect(int ioThreads, String ownerPrefix) throws VmdException {
    return VmdClient.connect(clientConfig(ioThreads), ownerPrefix);
  }

  /** As above, owning namespaces as exactly {@code ownerId}, the same after a restart (VmdClient#connectAs). */
  VmdClient connectAs(int ioThreads, String ownerId) throws VmdException {
    return VmdClient.connectAs(clientConfig(ioThreads), ownerId);
  }

  ClientConfig clientConfig(int ioThreads) {
    return clientConfig(ioThreads, clientTls());
  }

  /** As above, as {@code tls} says (a host agent's node certificate), not as client.IDENTITY. */
  ClientConfig clientConfig(int ioThreads, ClusterTls tls) {
    return ClientConfig.of(metaList()).withCluster(cluster).withRequestTimeout(timeout)
        .withIoThreads(ioThreads).withClusterKey(clusterKey()).withMaxQueuedBytes(maxQueued).withTls(tls)
        .withSealKey(sealKey());
  }

  public static void main(String[] args) {
    // Before the first logger: VMD_LOG_FORMAT=json picks the JSON layout (one object per line).
    if ("json".equalsIgnoreCase(System.getenv("VMD_LOG_FORMAT"))
        && System.getProperty("logback.configurationFile") == null) {
      System.setProperty("logback.configurationFile", "logback-json.xml");
    }
    System.exit(run(args));
  }

  /** Runs the command line and returns the exit code (the tests call this in-process). */
  public static int run(String... args) {
    System.setProperty("chronicle.analytics.disable", "true");
    CommandLine cl = new CommandLine(new Vmd());
    // Help fills the terminal (80 columns when it cannot tell): descriptions are paragraphs picocli wraps.
    cl.setUsageHelpAutoWidth(true);
    Path config;
    try {
      config = configFile(System.getenv("VMD_CONFIG"), Path.of(System.getProperty("user.home"), ".vmd.properties"),
          Path.of("/etc/vmd/vmd.properties"));
    } catch (IllegalArgumentException e) {
      System.err.println("vmd: " + e.getMessage());
      return 2;
    }
    if (config != null) {
      cl.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(config.toFile()));
    }
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      cmd.getErr().println("vmd: " + message(e));
      return 1;
    });
    cl.setParameterExceptionHandler((e, argv) -> {
      CommandLine cmd = e.getCommandLine();
      cmd.getErr().println("vmd: " + e.getMessage());
      cmd.getErr().println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help' for more information.");
      return 2;
    });
    return cl.execute(args);
  }

  /**
   * The properties file that gives options their defaults: {@code VMD_CONFIG} if set (it must exist),
   * else the user's own, else the system's (what the systemd units use), else none.
   */
  static Path configFile(String fromEnvironment, Path user, Path system) {
    if (fromEnvironment != null && !fromEnvironment.isBlank()) {
      Path p = Path.of(fromEnvironment);
      if (!Files.isReadable(p)) {
        throw new IllegalArgumentException("VMD_CONFIG=" + fromEnvironment + ": no such readable file");
      }
      return p;
    }
    if (Files.isReadable(user)) {
      return user;
    }
    return Files.isReadable(system) ? system : null;
  }

  private static String message(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && (t.getMessage() == null || t instanceof CompletionException)) {
      t = t.getCause();
    }
    return t.getMessage() == null ? t.toString() : t.getMessage();
  }

  static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      String v = value.trim().toLowerCase(Locale.ROOT);
      if (v.endsWith("ms")) {
        return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
      }
      if (v.endsWith("s")) {
        return Duration.ofMillis((long) (Double.parseDouble(v.substring(0, v.length() - 1)) * 1000));
      }
      if (v.endsWith("m")) {
        return Duration.ofMinutes(Long.parseLong(v.substring(0, v.length() - 1)));
      }
      return Duration.ofMillis((long) (Double.parseDouble(v) * 1000));
    }
  }

  static final class SizeConverter implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      return Sizes.parse(value);
    }
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      // The jar's manifest version, as vmd_build_info reports it ("dev" when run from classes).
      return new String[] {"vmd " + RoleMetrics.version()};
    }
  }
}
