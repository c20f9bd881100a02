package io.vmd.migration.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Live migration of a QEMU guest between two QEMUs over QMP, with stock QEMU: pre-copy ({@code migrate}),
 * post-copy ({@code postcopy-ram} on both sides, {@code migrate-start-postcopy} at once) and Agile's
 * hybrid (one pre-copy pass, then post-copy: {@code migrate-start-postcopy} as soon as QEMU has synced
 * the dirty bitmap a second time, i.e. the first pass is over). The guest's swap disk is the same
 * namespace on both sides, so what the guest swapped never crosses the migration link.
 */
public final class QemuMigration {
  private QemuMigration() {}

  public enum Policy {
    PRE_COPY, POST_COPY, AGILE;

    public static Policy parse(String s) {
      return switch (s.toLowerCase(Locale.ROOT)) {
        case "pre-copy", "precopy" -> PRE_COPY;
        case "post-copy", "postcopy" -> POST_COPY;
        case "agile", "hybrid" -> AGILE;
        default -> throw new IllegalArgumentException("policy '" + s + "': pre-copy, post-copy or agile");
      };
    }

    public String label() {
      return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
  }

  /**
   * What QEMU reports of one migration (query-migrate at completion).
   *
   * @param postcopyAfterMillis when post-copy was requested, from the start (-1: never)
   * @param switchoverMillis how long the switch-over step took while the guest was paused (-1: none)
   * @param precopyPassSkipped Agile went to post-copy at once: the source runs under TCG on a QEMU
   *     whose dirty tracking would lose guest writes during pre-copy ({@link TcgDirtyTracking})
   * @param guestDowntimeMillis downtime as the guest sees it: from the source's STOP event to the
   *     destination's RESUME, by QEMU's event timestamps (-1: an event did not come; both QEMUs must
   *     share a clock, as on one host)
   */
  public record Result(Policy policy, String status, long totalMillis, long downtimeMillis, long transferredBytes,
      long precopyBytes, long postcopyBytes, long downtimeBytes, long zeroPages, long postcopyRequests,
      long dirtySyncCount, long postcopyAfterMillis, long switchoverMillis, boolean precopyPassSkipped,
      long guestDowntimeMillis) {}

  /**
   * What runs at switch-over, while the source is paused and before the destination may run: the
   * moment the VM's swap namespace changes hands, so that the source can never write it afterwards.
   * Throwing cancels the migration (the source resumes).
   */
  @FunctionalInterface
  public interface SwitchOver {
    void run() throws Exception;
  }

  /**
   * A migration of the VM behind {@code source} to the QEMU behind {@code destination} (started with
   * {@code -incoming}), to be set up and {@link Builder#run run} (as Caffeine's {@code newBuilder()}):
   * the policy, the destination's migration address, the bandwidth and timeout are required.
   */
  public static Builder newBuilder(Qmp source, Qmp destination) {
    return new Builder(source, destination);
  }

  /**
   * A migration of the VM behind {@code source} to a QEMU on another host, which that host readied
   * with {@link #prepareIncoming} and whose address goes to {@link Builder#to}.
   */
  public static Builder newBuilder(Qmp source) {
    return new Builder(source, null);
  }

  /**
   * Readies a QEMU started with {@code -incoming defer} to receive a migration of {@code policy} on
   * {@code host:port}: the capabilities the policy needs and, with {@code tlsDir} (ca-cert.pem,
   * server-cert.pem naming {@code host}, server-key.pem), a TLS listener that checks the source's
   * certificate. Run by whoever holds the destination's QMP, before the source starts.
   */
  public static void prepareIncoming(Qmp destination, Policy policy, String host, int port, Path tlsDir)
      throws QmpException {
    Duration t = Duration.ofSeconds(10);
    List<Map<String, Object>> caps = capabilities(policy);
    destination.call("migrate-set-capabilities", Map.of("capabilities", caps), t);
    if (tlsDir != null) {
      String id = newTlsId();
      addTlsCreds(destination, id, "server", tlsDir);
      destination.call("migrate-set-parameters", Map.of("tls-creds", id), t);
    }
    destination.call("migrate-incoming", Map.of("uri", "tcp:" + host + ":" + port), t);
  }

  /** The settings of one migration; {@link #run} performs it. */
  public static final class Builder {
    private final Qmp source;
    private final Qmp destination;
    private Policy policy;
    private String host;
    private int port;
    private long bytesPerSecond;
    private Duration timeout;
    private Consumer<JsonNode> progress = m -> { };
    private SwitchOver switchOver;
    private boolean allowTcgPreCopy;
    private Path sourceCreds;
    private Path destinationCreds;
    private BooleanSupplier cancelled = () -> false;

    private Builder(Qmp source, Qmp destination) {
      this.source = source;
      this.destination = destination;
    }

    public Builder policy(Policy policy) {
      this.policy = policy;
      return this;
    }

    /** Where the destination QEMU listens for the migration stream. */
    public Builder to(String host, int port) {
      this.host = host;
      this.port = port;
      return this;
    }

    /** The migration stream's bandwidth cap. */
    public Builder bandwidth(long bytesPerSecond) {
      this.bytesPerSecond = bytesPerSecond;
      return this;
    }

    /** The most the whole migration may take; past it, it is cancelled and the source resumes. */
    public Builder timeout(Duration timeout) {
      this.timeout = timeout;
      return this;
    }

    /** Called with each query-migrate answer while it runs (default: nothing). */
    public Builder progress(Consumer<JsonNode> progress) {
      this.progress = progress;
      return this;
    }

    /**
     * Sends the migration stream over TLS with QEMU's x509 credentials, both ends verified:
     * {@code sourceDir} holds ca-cert.pem, client-cert.pem and client-key.pem, {@code destinationDir}
     * ca-cert.pem, server-cert.pem and server-key.pem, whose certificate must name the host given to
     * {@link #to} (default, or either null: plain TCP).
     */
    public Builder tls(Path sourceDir, Path destinationDir) {
      this.sourceCreds = sourceDir;
      this.destinationCreds = destinationDir;
      return this;
    }

    /**
     * TLS to a destination readied elsewhere ({@link #prepareIncoming}): {@code sourceDir} holds
     * ca-cert.pem, client-cert.pem and client-key.pem; the destination's certificate must name the
     * host given to {@link #to}.
     */
    public Builder tls(Path sourceDir) {
      this.sourceCreds = sourceDir;
      return this;
    }

    /**
     * Asked between polls: once true, a migration not yet in post-copy is cancelled (the source runs
     * on) and {@link #run} throws. In post-copy the guest already runs on the destination, so it goes on.
     */
    public Builder cancelWhen(BooleanSupplier cancelled) {
      this.cancelled = cancelled;
      return this;
    }

    /** Runs while the source is paused, before the destination may run (default: none). */
    public Builder switchOver(SwitchOver switchOver) {
      this.switchOver = switchOver;
      return this;
    }

    /**
     * Lets pre-copy run although the source's QEMU would lose guest writes in it ({@link TcgDirtyTracking};
     * default false). For measuring the bug only.
     */
    public Builder allowTcgPreCopy(boolean allow) {
      this.allowTcgPreCopy = allow;
      return this;
    }

    public Result run() throws QmpException {
      if (policy == null || host == null || timeout == null || bytesPerSecond <= 0) {
        throw new IllegalStateException("a migration needs a policy, a destination address, a bandwidth and a timeout");
      }
      if (destination != null && (sourceCreds == null) != (destinationCreds == null)) {
        throw new IllegalStateException("TLS needs credentials for both ends");
      }
      return migrate(this);
    }
  }

  /** How the x509 credentials objects of TLS migration streams are named. */
  static final String TLS_ID = "vmd-migration-tls";

  /** A new credentials object per attempt: one an earlier attempt made may still be held by QEMU. */
  private static String newTlsId() {
    return TLS_ID + "-" + Long.toHexString(System.nanoTime());
  }

  /**
   * The capabilities both ends share for {@code policy}. postcopy-ram is stated both ways: a QEMU that
   * arrived by post-copy keeps it on, and a pre-copy stream that advises post-copy is refused by a
   * destination without it.
   */
  private static List<Map<String, Object>> capabilities(Policy policy) {
    return new ArrayList<>(List.of(Map.of("capability", "events", "state", true),
        Map.of("capability", "postcopy-ram", "state", policy != Policy.PRE_COPY)));
  }

  private static void addTlsCreds(Qmp qmp, String id, String endpoint, Path dir) throws QmpException {
    qmp.call("object-add", Map.of("qom-type", "tls-creds-x509", "id", id, "endpoint", endpoint,
        "verify-peer", true, "dir", dir.toAbsolutePath().toString()), Duration.ofSeconds(10));
  }

  /**
   * From the source's MIGRATION "setup" event to its "completed" one, by QEMU's timestamps; QEMU's own
   * total-time when the events did not come (it reads 0 for some completed pre-copies on 7.2).
   */
  private static long totalMillis(Qmp source, int from, JsonNode completed) throws QmpException {
    Qmp.Event done = source.nextEvent("MIGRATION", from, e -> "completed".equals(e.data().path("status").asText()),
        Duration.ofSeconds(2));
    Qmp.Event setup = source.nextEvent("MIGRATION", from, e -> "setup".equals(e.data().path("status").asText()),
        Duration.ZERO);
    if (setup == null || done == null) {
      return completed.path("total-time").asLong();
    }
    return Math.max(0, (done.timestampMicros() - setup.timestampMicros()) / 1000);
  }

  private static long guestDowntime(Qmp source, int sourceFrom, Qmp destination, int destinationFrom)
      throws QmpException {
    Qmp.Event stop = null;
    List<Qmp.Event> seen = source.events();
    for (int i = sourceFrom; i < seen.size(); i++) {
      if (seen.get(i).name().equals("STOP")) {
        stop = seen.get(i);
      }
    }
    // The destination resumes a moment after the source reports completion.
    Qmp.Event resume = destination.nextEvent("RESUME", destinationFrom, e -> true, Duration.ofSeconds(5));
    if (stop == null || resume == null) {
      return -1;
    }
    return Math.max(0, (resume.timestampMicros() - stop.timestampMicros()) / 1000);
  }

  /** Whether the QEMU behind {@code qmp} emulates its CPU (TCG) rather than running it under KVM. */
  public static boolean emulated(Qmp qmp) throws QmpException {
    return !qmp.call("query-kvm", null, Duration.ofSeconds(10)).path("enabled").asBoolean();
  }

  /**
   * Migrates the guest of {@code source} into {@code destination} (a QEMU started with
   * {@code -incoming defer}) over TCP at {@code host:port}, the link capped at {@code bytesPerSecond}.
   * {@code progress} sees every query-migrate answer while it runs. With {@code switchOver}, the source
   * pauses before the switch-over (QEMU's {@code pause-before-switchover}: the guest stopped, its
   * disk requests drained) until that step has run.
   *
   * <p>A source under TCG on QEMU before 9.0 whose RAM is a multiple of 256 KiB loses guest writes in
   * pre-copy ({@link TcgDirtyTracking}; {@link QemuVm} sizes RAM around it), so unless
   * {@code allowTcgPreCopy} pre-copy of such a guest is refused and Agile skips its pre-copy pass
   * (post-copy at once, {@link Result#precopyPassSkipped}). Post-copy never runs the guest while pages
   * are copied from under it, so it is safe either way.
   */
  private static Result migrate(Builder b) throws QmpException {
    Qmp source = b.source;
    Qmp destination = b.destination;
    Policy policy = b.policy;
    String host = b.host;
    int port = b.port;
    long bytesPerSecond = b.bytesPerSecond;
    Duration timeout = b.timeout;
    Consumer<JsonNode> progress = b.progress;
    SwitchOver switchOver = b.switchOver;
    boolean allowTcgPreCopy = b.allowTcgPreCopy;
    Duration t = Duration.ofSeconds(10);
    boolean skipPass = false;
    String hazard = policy == Policy.POST_COPY || allowTcgPreCopy ? null : TcgDirtyTracking.preCopyHazard(source);
    if (hazard != null) {
      if (policy == Policy.PRE_COPY) {
        throw new QmpException("migrate", "refusing pre-copy: " + hazard);
      }
      skipPass = true; // Agile starts in post-copy
    }
    List<Map<String, Object>> caps = capabilities(policy);
    caps.add(Map.of("capability", "pause-before-switchover", "state", switchOver != null));
    source.call("migrate-set-capabilities", Map.of("capabilities", caps), t);
    Map<String, Object> params = new HashMap<>(Map.of("max-bandwidth", bytesPerSecond,
        "max-postcopy-bandwidth", bytesPerSecond));
    if (policy != Policy.PRE_COPY) {
      // Small, so that QEMU does not quietly finish in pre-copy before post-copy is asked for.
      params.put("downtime-limit", 1);
    }
    if (destination != null) {
      prepareIncoming(destination, policy, host, port, b.destinationCreds);
    }
    if (b.sourceCreds != null) {
      // Each end checks the other's certificate.
      String id = newTlsId();
      addTlsCreds(source, id, "client", b.sourceCreds);
      params.put("tls-creds", id);
      params.put("tls-hostname", host);
    }
    source.call("migrate-set-parameters", params, t);
    String uri = "tcp:" + host + ":" + port;
    // Events of this migration are those from here on (a QMP connection may have seen earlier ones).
    int migrationEvents = source.events().size();
    int destinationEvents = destination == null ? 0 : destination.events().size();
    long start = System.nanoTime();
    source.call("migrate", Map.of("uri", uri), t);
    long postcopyAt = -1;
    if (policy == Policy.POST_COPY || skipPass) {
      source.call("migrate-start-postcopy", null, t);
      postcopyAt = 0;
    }
    long deadline = start + timeout.toNanos();
    long switchoverMillis = -1;
    while (true) {
      JsonNode m = source.call("query-migrate", null, t);
      progress.accept(m);
      String status = m.path("status").asText();
      if (status.equals("pre-switchover") && switchOver != null && switchoverMillis < 0) {
        long at = System.nanoTime();
        try {
          switchOver.run();
        } catch (Exception e) {
          source.execute("migrate_cancel", null);
          throw new QmpException("migrate", "the switch-over step failed, migration cancelled: " + e.getMessage());
        }
        switchoverMillis = Math.max(0, (System.nanoTime() - at) / 1_000_000);
        source.call("migrate-continue", Map.of("state", "pre-switchover"), t);
        continue;
      }
      if (policy == Policy.AGILE && postcopyAt < 0 && m.path("ram").path("dirty-sync-count").asLong() >= 2
          && status.equals("active")) {
        source.call("migrate-start-postcopy", null, t);
        postcopyAt = (System.nanoTime() - start) / 1_000_000;
      }
      if (b.cancelled.getAsBoolean() && (status.equals("active") || status.equals("setup")
          || status.equals("pre-switchover") && switchoverMillis < 0)) {
        source.execute("migrate_cancel", null);
        throw new QmpException("migrate", "cancelled before switch-over (status " + status + "): the VM runs on here");
      }
      if (status.equals("completed") || status.equals("failed") || status.equals("cancelled")) {
        JsonNode ram = m.path("ram");
        if (!status.equals("completed")) {
          throw new QmpException("migrate", "migration " + status + ": " + m.path("error-desc").asText(m.toString()));
        }
        return new Result(policy, status, totalMillis(source, migrationEvents, m), m.path("downtime").asLong(),
            ram.path("transferred").asLong(), ram.path("precopy-bytes").asLong(), ram.path("postcopy-bytes").asLong(),
            ram.path("downtime-bytes").asLong(), ram.path("duplicate").asLong(), ram.path("postcopy-requests").asLong(),
            ram.path("dirty-sync-count").asLong(), postcopyAt, switchoverMillis, skipPass,
            destination == null ? -1 : guestDowntime(source, migrationEvents, destination, destinationEvents));
      }
      if (System.nanoTime() > deadline) {
        source.execute("migrate_cancel", null);
        throw new QmpException("migrate", "not done within " + timeout.toSeconds() + " s (status " + status + ")");
      }
      // Poll every 50 ms, but wake at once when the source pauses for the switch-over: the guest is
      // stopped until it continues.
      if (switchOver != null && switchoverMillis < 0) {
        source.nextEvent("MIGRATION", migrationEvents, e -> "pre-switchover".equals(e.data().path("status").asText()),
            Duration.ofMillis(50));
      } else {
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new QmpException("migrate", "interrupted");
        }
      }
    }
  }
}
