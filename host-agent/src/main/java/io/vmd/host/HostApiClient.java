package io.vmd.host;

import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCalls;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A connection to one host's agent: for the CLI (as an admin) and for other agents (as hosts). With
 * the cluster's TLS it shows this process's certificate and checks that the agent's names the address
 * dialled. Every call has a deadline.
 */
public final class HostApiClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final Duration deadline;

  private HostApiClient(ManagedChannel channel, Duration deadline) {
    this.channel = channel;
    this.deadline = deadline;
  }

  /** {@code tls} null: plaintext, for an agent run with --insecure. */
  public static HostApiClient connect(HostPort agent, ClusterTls tls, Duration deadline) {
    ChannelCredentials credentials = tls == null ? InsecureChannelCredentials.create()
        : TlsChannelCredentials.newBuilder().keyManager(tls.keyManagers()).trustManager(tls.trustManagers()).build();
    ManagedChannel channel = Grpc.newChannelBuilderForAddress(agent.host(), agent.port(), credentials)
        .maxInboundMessageSize(HostApi.MAX_MESSAGE_BYTES).build();
    return new HostApiClient(channel, deadline);
  }

  /** Who and how the agent is; StatusRuntimeException (UNAVAILABLE, PERMISSION_DENIED...) otherwise. */
  public HostApi.Status status() throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.STATUS,
        CallOptions.DEFAULT.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS),
        new HostApi.StatusRequest());
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }
}
