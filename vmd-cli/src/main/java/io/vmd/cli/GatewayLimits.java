package io.vmd.cli;

import io.vmd.nbd.GatewayConfig;
import java.time.Duration;
import picocli.CommandLine.Option;

/** The gateway's memory budgets and client deadline, shared by {@code vmd gateway} and {@code vmd up}. */
final class GatewayLimits {
  @Option(names = "--connection-budget", defaultValue = "64M", converter = Vmd.SizeConverter.class,
      paramLabel = "SIZE", description = "Most bytes one NBD connection may hold (payloads received, replies "
          + "not yet taken); past it the connection stops reading until half is free (default: ${DEFAULT-VALUE}).")
  long connectionBudget;

  @Option(names = "--budget", defaultValue = "512M", converter = Vmd.SizeConverter.class, paramLabel = "SIZE",
      description = "Most bytes all NBD connections may hold together (default: ${DEFAULT-VALUE}).")
  long totalBudget;

  @Option(names = "--handshake-timeout", defaultValue = "30s", converter = Vmd.DurationConverter.class,
      paramLabel = "DURATION",
      description = "A client must choose an export within this long of connecting (default: ${DEFAULT-VALUE}).")
  Duration handshakeTimeout;

  GatewayConfig apply(GatewayConfig c) {
    return c.withBudgets(connectionBudget, totalBudget).withHandshakeTimeout(handshakeTimeout);
  }
}
