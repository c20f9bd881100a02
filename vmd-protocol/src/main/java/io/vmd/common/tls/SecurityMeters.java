package io.vmd.common.tls;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.function.ToDoubleFunction;

/**
 * The meters every role exports about its security, named alike so one alert rule covers them:
 * {@code vmd_auth_failures_total{role,reason}} and {@code vmd_certificate_expiry_seconds{role,identity}}
 * (when its certificate stops being valid, as Unix seconds).
 */
public final class SecurityMeters {
  private SecurityMeters() {}

  /**
   * Counts one peer, command or page copy that {@code role} (the refusing process: server, gateway,
   * meta) refused: a bad certificate, a wrong role, a bad signature, a failed seal.
   */
  public static void authFailure(MeterRegistry registry, String role, String reason) {
    Counter.builder("vmd.auth.failures").description("peers, commands or page copies refused for who or what they are")
        .tag("role", role).tag("reason", reason).register(registry).increment();
  }

  /** Exports a count kept elsewhere as {@code vmd_auth_failures_total{role,reason}}. */
  public static <T> void authFailures(MeterRegistry registry, String role, String reason, T source,
      ToDoubleFunction<T> count) {
    FunctionCounter.builder("vmd.auth.failures", source, count)
        .description("peers, commands or page copies refused for who or what they are")
        .tag("role", role).tag("reason", reason).register(registry);
  }

  /** The expiry of this process's certificate, when it has one (null: --insecure, nothing exported). */
  public static void certificateExpiry(MeterRegistry registry, Role role, ClusterTls tls) {
    if (tls == null) {
      return;
    }
    double notAfter = tls.certificate().getNotAfter().getTime() / 1000.0;
    Gauge.builder("vmd.certificate.expiry", () -> notAfter)
        .description("when this process's certificate stops being valid (Unix time)").baseUnit("seconds")
        .tag("role", role.label()).tag("identity", tls.identity().name()).register(registry);
  }
}
