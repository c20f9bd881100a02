package io.vmd.host;

import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCalls;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.migration.qemu.QemuMigration;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

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
    return ClientCalls.blockingUnaryCall(channel, HostApi.STATUS, options(), new HostApi.StatusRequest());
  }

  /** Starts a VM on the agent's host. */
  public HostApi.VmInfo startVm(HostApi.StartVm request) throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.START_VM, options(), request);
  }

  /** Stops a VM the agent runs. */
  public HostApi.VmInfo stopVm(String name) throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.STOP_VM, options(), new HostApi.VmName(name));
  }

  /** The VMs the agent runs. */
  public List<HostApi.VmInfo> listVms() throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.LIST_VMS, options(), new HostApi.StatusRequest()).vms();
  }

  /** Readies the agent's host to receive a VM that this (source) host migrates to it. */
  public HostApi.IncomingAt prepareIncoming(HostApi.Incoming request) throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.PREPARE_INCOMING, options(), request);
  }

  /** Sets the balloon of a VM the agent runs. */
  public HostApi.VmInfo balloonVm(String name, long bytes) throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.BALLOON_VM, options(), new HostApi.Balloon(name, bytes));
  }

  /** At switch-over: the destination's gateway claims the incoming VM's namespace. */
  public HostApi.VmInfo takeNamespace(String name) throws StatusRuntimeException {
    return ClientCalls.blockingUnaryCall(channel, HostApi.TAKE_NAMESPACE, options(), new HostApi.VmName(name));
  }

  /**
   * Has the agent migrate one of its VMs to another host; {@code progress} sees every update as it
   * comes, the last one carrying the result. The call's deadline is the migration's timeout plus this
   * client's deadline. A caller that goes away (Ctrl-C) cancels the call, and with it a migration not yet
   * switched over.
   */
  public QemuMigration.Result migrate(HostApi.Migrate request, Consumer<HostApi.MigrationUpdate> progress)
      throws StatusRuntimeException {
    CallOptions o = CallOptions.DEFAULT.withDeadlineAfter(request.timeoutMillis() + deadline.toMillis(),
        TimeUnit.MILLISECONDS);
    Iterator<HostApi.MigrationUpdate> updates = ClientCalls.blockingServerStreamingCall(channel, HostApi.MIGRATE, o,
        request);
    QemuMigration.Result result = null;
    while (updates.hasNext()) {
      HostApi.MigrationUpdate u = updates.next();
      progress.accept(u);
      result = u.result() != null ? u.result() : result;
    }
    if (result == null) {
      throw Status.INTERNAL.withDescription("the agent ended the migration without a result").asRuntimeException();
    }
    return result;
  }

  private CallOptions options() {
    return CallOptions.DEFAULT.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }
}
