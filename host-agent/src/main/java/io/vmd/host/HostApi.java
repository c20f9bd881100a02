package io.vmd.host;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.MethodDescriptor;
import io.vmd.migration.qemu.QemuMigration;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * The host agent's API as gRPC methods. Messages are Jackson records in JSON rather than protobuf, so
 * the build needs no protoc; gRPC carries them as any other bytes. One descriptor per method, all in
 * service {@value #SERVICE}.
 */
public final class HostApi {
  /** The service's name; a new incompatible API gets a new version here. */
  public static final String SERVICE = "vmd.host.v1.HostAgent";
  /** The largest message either side takes. */
  static final int MAX_MESSAGE_BYTES = 1 << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  private HostApi() {}

  /** Asks an agent who and how it is. */
  public record StatusRequest() {}

  /**
   * @param host the agent's host name (its certificate's identity)
   * @param version the build it runs
   * @param caller who the agent took the caller for (its certificate's role and name)
   */
  public record Status(String host, String version, String caller) {}

  /**
   * Start a VM on the agent's host, its swap disk the namespace through the agent's gateway.
   *
   * @param incoming wait for a migration instead of booting
   * @param append the guest kernel's command line (null: the agent's default)
   */
  public record StartVm(String name, String namespace, long memoryBytes, boolean incoming, String append) {}

  public record VmName(String name) {}

  /** Set a VM's balloon so that the guest has {@code bytes} of RAM. */
  public record Balloon(String name, long bytes) {}

  /**
   * A VM as its agent sees it.
   *
   * @param status QEMU's run state (running, inmigrate, paused...), or "stopped"
   * @param balloonBytes the RAM its balloon leaves the guest now (0: not known yet)
   */
  public record VmInfo(String name, String namespace, long memoryBytes, String status, long balloonBytes) {}

  public record VmList(List<VmInfo> vms) {
    public VmList {
      vms = List.copyOf(vms);
    }
  }

  /**
   * Move a VM this agent runs to another host (from the CLI).
   *
   * @param to the destination host's name
   * @param policy pre-copy, post-copy or agile
   * @param bytesPerSecond the migration stream's cap
   * @param timeoutMillis cancel (the VM staying here) if not done within this
   */
  public record Migrate(String name, String to, String policy, long bytesPerSecond, long timeoutMillis) {}

  /**
   * One step of a migration as its source agent streams it: QEMU's status and bytes until the last,
   * which carries the result.
   */
  public record MigrationUpdate(String status, long transferredBytes, long remainingBytes,
      QemuMigration.Result result) {}

  /**
   * Ready a QEMU to receive a VM that the calling host migrates here (from the source's agent). The
   * VM's namespace and size are the control plane's record of it, which must name this host as the
   * migration's target.
   *
   * @param timeoutMillis how long the source may take; an incoming VM that never arrives is stopped
   */
  public record Incoming(String name, String policy, long timeoutMillis) {}

  /** Where the destination QEMU listens for the migration stream. */
  public record IncomingAt(String host, int port) {}

  static final MethodDescriptor<StatusRequest, Status> STATUS = unary("Status", StatusRequest.class, Status.class);
  static final MethodDescriptor<StartVm, VmInfo> START_VM = unary("StartVm", StartVm.class, VmInfo.class);
  static final MethodDescriptor<VmName, VmInfo> STOP_VM = unary("StopVm", VmName.class, VmInfo.class);
  static final MethodDescriptor<StatusRequest, VmList> LIST_VMS = unary("ListVms", StatusRequest.class, VmList.class);
  static final MethodDescriptor<Incoming, IncomingAt> PREPARE_INCOMING =
      unary("PrepareIncoming", Incoming.class, IncomingAt.class);
  static final MethodDescriptor<Balloon, VmInfo> BALLOON_VM = unary("BalloonVm", Balloon.class, VmInfo.class);
  static final MethodDescriptor<VmName, VmInfo> TAKE_NAMESPACE = unary("TakeNamespace", VmName.class, VmInfo.class);
  static final MethodDescriptor<Migrate, MigrationUpdate> MIGRATE = method(MethodDescriptor.MethodType.SERVER_STREAMING,
      "Migrate", Migrate.class, MigrationUpdate.class);

  private static <Q, A> MethodDescriptor<Q, A> unary(String name, Class<Q> request, Class<A> reply) {
    return method(MethodDescriptor.MethodType.UNARY, name, request, reply);
  }

  private static <Q, A> MethodDescriptor<Q, A> method(MethodDescriptor.MethodType type, String name,
      Class<Q> request, Class<A> reply) {
    return MethodDescriptor.<Q, A>newBuilder().setType(type)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
        .setRequestMarshaller(json(request)).setResponseMarshaller(json(reply)).build();
  }

  /** Reads and writes one record type as JSON. */
  static <T> MethodDescriptor.Marshaller<T> json(Class<T> type) {
    return new MethodDescriptor.Marshaller<>() {
      @Override
      public InputStream stream(T value) {
        try {
          return new ByteArrayInputStream(JSON.writeValueAsBytes(value));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }

      @Override
      public T parse(InputStream in) {
        try {
          return JSON.readValue(in, type);
        } catch (IOException e) {
          throw new IllegalArgumentException("not a " + type.getSimpleName() + ": " + e.getMessage(), e);
        }
      }
    };
  }
}
