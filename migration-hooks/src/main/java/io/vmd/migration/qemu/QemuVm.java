package io.vmd.migration.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vmd.common.NbdEndpoint;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One QEMU guest whose swap disk is a VMD namespace: QEMU's own NBD client reaches the export through
 * a gateway ({@code -blockdev driver=nbd}) and shows it to the guest as a virtio disk, so the guest
 * kernel swaps its cold pages into the cluster. It has a balloon (its memory reservation), a serial
 * log and a QMP socket, all in the VM's directory. Started with {@code incoming}, it waits for a
 * migration ({@code -incoming defer}).
 */
public final class QemuVm implements AutoCloseable {
  /** Files of a VM's directory. */
  public static final String QMP = "qmp.sock";
  public static final String SERIAL = "serial.log";
  public static final String PID = "qemu.pid";
  public static final String LOG = "qemu.log";
  public static final String SPEC = "vm.properties";
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What a VM is made of.
   *
   * @param name its name (also QEMU's -name)
   * @param memoryBytes guest RAM
   * @param namespace the namespace that is its swap disk
   * @param gateway the NBD gateway serving it: TCP, or the Unix socket of this host's gateway
   * @param kernel the guest kernel; {@code initrd} its initramfs; {@code append} its command line
   * @param accel "tcg", "kvm", or "kvm:tcg" (KVM when it works, else emulation)
   * @param incoming wait for a migration instead of booting
   * @param tlsCreds QEMU's x509 credentials for the gateway's TLS (a directory with ca-cert.pem and, for
   *     a gateway that verifies peers, client-cert.pem and client-key.pem), or null: plain NBD
   */
  public record Spec(String name, long memoryBytes, String namespace, NbdEndpoint gateway, Path kernel, Path initrd,
      String append, String accel, boolean incoming, Path tlsCreds) {
    /** Id of the TLS credentials object the disk uses. */
    static final String TLS_ID = "vmd-tls";
    /** How long QEMU's NBD client keeps a guest's requests while it reconnects to its gateway. */
    static final int RECONNECT_DELAY_SECONDS = 60;

    public Spec(String name, long memoryBytes, String namespace, NbdEndpoint gateway, Path kernel, Path initrd,
        String append, String accel, boolean incoming) {
      this(name, memoryBytes, namespace, gateway, kernel, initrd, append, accel, incoming, null);
    }

    public Spec {
      checkName(name);
      if (memoryBytes < (64L << 20)) {
        throw new IllegalArgumentException("a VM needs at least 64 MiB of memory");
      }
    }

    /**
     * The QEMU command line, its files in {@code dir}. Nothing a user names is pasted into QEMU's
     * comma-separated option syntax unescaped: the disk is JSON, paths in options have commas doubled.
     */
    public List<String> commandLine(Path dir) {
      List<String> c = new ArrayList<>(List.of("qemu-system-x86_64", "-name", name));
      for (String a : accel.split(":")) {
        c.add("-accel");
        c.add(a);
      }
      if (tlsCreds != null) {
        // QEMU checks the gateway's certificate against ca-cert.pem and shows its own client certificate.
        c.addAll(List.of("-object", "tls-creds-x509,id=" + TLS_ID + ",endpoint=client,verify-peer=on,dir="
            + optionValue(tlsCreds.toAbsolutePath().toString())));
      }
      c.addAll(List.of("-cpu", "max", "-smp", "1", "-m", ramOption(),
          "-kernel", kernel.toString(), "-initrd", initrd.toString(), "-append", append,
          "-blockdev", blockdev(),
          "-device", "virtio-blk-pci,drive=swap0,id=swapdisk",
          "-device", "virtio-balloon-pci,id=balloon0",
          "-qmp", "unix:" + optionValue(dir.resolve(QMP).toString()) + ",server=on,wait=off",
          "-serial", "file:" + optionValue(dir.resolve(SERIAL).toString()),
          "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
          "-pidfile", dir.resolve(PID).toString()));
      if (incoming) {
        c.add("-incoming");
        c.add("defer");
      }
      return c;
    }

    /** Guest RAM for -m: the size asked for, sized around QEMU's TCG dirty-tracking bug where it applies. */
    String ramOption() {
      long ram = TcgDirtyTracking.guestRam(memoryBytes, accel);
      return ram % (1 << 20) == 0 ? (ram >> 20) + "M" : (ram >> 10) + "K";
    }

    /** The swap disk: QEMU's NBD client on the gateway's export, as -blockdev's JSON form. */
    String blockdev() {
      ObjectNode d = JSON.createObjectNode().put("driver", "nbd").put("node-name", "swap0").put("export", namespace);
      ObjectNode server = d.putObject("server");
      if (gateway.unix() != null) {
        server.put("type", "unix").put("path", gateway.unix().toString());
      } else {
        server.put("type", "inet").put("host", gateway.tcp().host()).put("port", String.valueOf(gateway.tcp().port()));
      }
      if (tlsCreds != null) {
        d.put("tls-creds", TLS_ID);
      }
      // A gateway that restarts (its host's agent upgraded, or crashed) is reconnected to: requests wait
      // up to this long and are sent again instead of failing, which a guest's swap would not survive.
      d.put("reconnect-delay", RECONNECT_DELAY_SECONDS);
      return d.toString();
    }
  }

  private final Spec spec;
  private final Path dir;
  /** QEMU's process: a child of this JVM, or one an earlier process started ({@link #adopt}). */
  private final ProcessHandle process;
  private final Qmp qmp;

  private QemuVm(Spec spec, Path dir, ProcessHandle process, Qmp qmp) {
    this.spec = spec;
    this.dir = dir;
    this.process = process;
    this.qmp = qmp;
  }

  /**
   * Starts QEMU for {@code spec} with its files in {@code dir} (created; an old serial log and socket
   * removed) and connects to its QMP socket. QEMU outlives this JVM unless {@link #close} stops it.
   */
  public static QemuVm start(Spec spec, Path dir) throws IOException {
    return start(spec, dir, List.of());
  }

  /**
   * As {@link #start(Spec, Path)}, QEMU run under {@code prefix}: {@code ip netns exec NS} puts it on an
   * emulated host (its QMP socket and files stay reachable through the file system).
   */
  public static QemuVm start(Spec spec, Path dir, List<String> prefix) throws IOException {
    // 0700: its QMP socket controls the VM and its serial log shows the guest; no other user may reach them.
    Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    Files.deleteIfExists(dir.resolve(QMP));
    Files.deleteIfExists(dir.resolve(SERIAL));
    Files.deleteIfExists(dir.resolve(PID));
    Properties p = new Properties();
    p.setProperty("name", spec.name());
    p.setProperty("memory", Long.toString(spec.memoryBytes()));
    p.setProperty("namespace", spec.namespace());
    p.setProperty("gateway", spec.gateway().toString());
    p.setProperty("incoming", Boolean.toString(spec.incoming()));
    if (spec.append() != null) {
      p.setProperty("append", spec.append());
    }
    if (spec.tlsCreds() != null) {
      p.setProperty("tls-creds", spec.tlsCreds().toAbsolutePath().toString());
    }
    try (var w = Files.newBufferedWriter(dir.resolve(SPEC))) {
      p.store(w, "vmd vm " + spec.name());
    }
    List<String> command = new ArrayList<>(prefix);
    command.addAll(spec.commandLine(dir));
    Process proc = new ProcessBuilder(command)
        .redirectErrorStream(true).redirectOutput(dir.resolve(LOG).toFile()).start();
    Qmp q;
    try {
      q = Qmp.connect(dir.resolve(QMP), spec.name(), Duration.ofSeconds(30));
    } catch (IOException e) {
      proc.destroyForcibly();
      String log = Files.exists(dir.resolve(LOG)) ? Files.readString(dir.resolve(LOG)).strip() : "";
      throw new IOException("QEMU for VM '" + spec.name() + "' did not start" + (log.isEmpty() ? "" : ": " + log), e);
    }
    return new QemuVm(spec, dir, proc.toHandle(), q);
  }

  /**
   * The VM whose QEMU runs in {@code dir}, started by an earlier process (a host's agent before its
   * restart): its spec from the directory, its process from QEMU's pid file, its QMP socket connected
   * again. Null when no QEMU of that VM runs there. {@code kernel}, {@code initrd} and {@code accel} are
   * what the spec says of a running guest's boot, which no longer matters.
   */
  public static QemuVm adopt(Path dir, Path kernel, Path initrd, String accel) throws IOException {
    Path pidFile = dir.resolve(PID);
    if (!Files.exists(dir.resolve(SPEC)) || !Files.exists(pidFile)) {
      return null;
    }
    Properties p = startedWith(dir);
    long pid;
    try {
      pid = Long.parseLong(Files.readString(pidFile).strip());
    } catch (NumberFormatException e) {
      return null;
    }
    // A pid is reused once its process is gone: only a QEMU counts.
    ProcessHandle h = ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
        .filter(x -> x.info().command().map(c -> c.contains("qemu")).orElse(false)).orElse(null);
    if (h == null) {
      return null;
    }
    String tls = p.getProperty("tls-creds");
    Spec spec = new Spec(p.getProperty("name"), Long.parseLong(p.getProperty("memory")), p.getProperty("namespace"),
        NbdEndpoint.parse(p.getProperty("gateway")), kernel, initrd, p.getProperty("append", ""), accel,
        Boolean.parseBoolean(p.getProperty("incoming")), tls == null ? null : Path.of(tls));
    return new QemuVm(spec, dir, h, Qmp.connect(dir.resolve(QMP), spec.name(), Duration.ofSeconds(5)));
  }

  /** What the VM in {@code dir} was started with: its vm.properties (name, memory, namespace, gateway...). */
  public static Properties startedWith(Path dir) throws IOException {
    Properties p = new Properties();
    try (var r = Files.newBufferedReader(dir.resolve(SPEC))) {
      p.load(r);
    }
    return p;
  }

  /** Connects to a VM started earlier (perhaps by another process) in {@code dir}. */
  public static Qmp attach(Path dir, String name) throws IOException {
    return Qmp.connect(dir.resolve(QMP), name, Duration.ofSeconds(2));
  }

  public Spec spec() {
    return spec;
  }

  public Path dir() {
    return dir;
  }

  public Qmp qmp() {
    return qmp;
  }

  public Path serialLog() {
    return dir.resolve(SERIAL);
  }

  /** What the guest printed on its serial console so far. */
  public String serial() throws IOException {
    Path s = serialLog();
    return Files.exists(s) ? Files.readString(s, StandardCharsets.ISO_8859_1) : "";
  }

  /** QEMU's run state ("running", "paused", "inmigrate", "postmigrate", ...). */
  public String status() throws QmpException {
    return qmp.call("query-status", null, Duration.ofSeconds(10)).path("status").asText();
  }

  /** Sets the balloon so that the guest has {@code bytes} of memory. */
  public void balloon(long bytes) throws QmpException {
    qmp.call("balloon", Map.of("value", bytes), Duration.ofSeconds(10));
  }

  /** The guest's memory as the balloon sets it, when the balloon driver answers. */
  public Optional<Long> balloonActual() {
    try {
      JsonNode r = qmp.call("query-balloon", null, Duration.ofSeconds(10));
      return Optional.of(r.path("actual").asLong());
    } catch (QmpException e) {
      return Optional.empty();
    }
  }

  public boolean alive() {
    return process.isAlive();
  }

  /** Waits until the guest printed a line containing {@code text}; returns the serial log then. */
  public String awaitSerial(String text, Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      String s = serial();
      if (s.contains(text)) {
        return s;
      }
      if (!process.isAlive() || System.nanoTime() > deadline) {
        throw new IOException("VM '" + spec.name() + "' did not print '" + text + "' "
            + (process.isAlive() ? "within " + timeout.toSeconds() + " s" : "before QEMU ended") + "; serial:\n" + s
            + "\nqemu:\n" + (Files.exists(dir.resolve(LOG)) ? Files.readString(dir.resolve(LOG)) : ""));
      }
      Thread.sleep(200);
    }
  }

  /** Quits QEMU (over QMP, else by signal) and waits for it. */
  @Override
  public void close() {
    try {
      if (process.isAlive()) {
        qmp.execute("quit", null);
        if (!exited(5)) {
          process.destroyForcibly();
          exited(5);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    } finally {
      qmp.close();
    }
  }

  private boolean exited(int seconds) throws InterruptedException {
    try {
      process.onExit().get(seconds, TimeUnit.SECONDS);
      return true;
    } catch (TimeoutException e) {
      return false;
    } catch (ExecutionException e) {
      return !process.isAlive();
    }
  }

  /**
   * Refuses a VM name that is not 1-64 letters, digits, '.', '_' or '-', or is '.' or '..': it names
   * the VM's directory and QEMU's -name.
   */
  public static String checkName(String name) {
    if (name == null || !name.matches("[A-Za-z0-9._-]{1,64}") || name.equals(".") || name.equals("..")) {
      throw new IllegalArgumentException("VM name '" + name + "': use 1-64 letters, digits, '.', '_' or '-', "
          + "not '.' or '..' (it names the VM's directory)");
    }
    return name;
  }

  /** A value inside QEMU's comma-separated option syntax: a comma is written twice. */
  static String optionValue(String value) {
    return value.replace(",", ",,");
  }
}
