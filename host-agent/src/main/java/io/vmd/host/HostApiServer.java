package io.vmd.host;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.migration.qemu.QemuMigration;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the host agent's API. With the cluster's TLS, only peers with a certificate of its CA get a
 * connection (mutual TLS), and only admins (the CLI) and hosts (other agents) get an answer: every
 * call's caller is read from its certificate, never from what it sends.
 */
public final class HostApiServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(HostApiServer.class);
  /** Who may call the agent: operators' tools, and the agents of other hosts (migrations). */
  static final Set<Role> CALLERS = Set.of(Role.ADMIN, Role.HOST);
  static final Context.Key<Identity> CALLER = Context.key("vmd-caller");

  private final Server server;
  private final String host;

  private HostApiServer(Server server, String host) {
    this.server = server;
    this.host = host;
  }

  /**
   * Listens at {@code listen}; {@code tls} null serves without TLS or authorization ({@code --insecure}),
   * as the caller is then told in every Status.
   */
  public static HostApiServer start(HostPort listen, ClusterTls tls, String version, HostService vms)
      throws IOException {
    ServerCredentials credentials = tls == null ? InsecureServerCredentials.create()
        : TlsServerCredentials.newBuilder().keyManager(tls.keyManagers()).trustManager(tls.trustManagers())
            .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE).build();
    String host = tls == null ? listen.host() : tls.identity().name();
    ServerServiceDefinition service = ServerServiceDefinition.builder(HostApi.SERVICE)
        .addMethod(HostApi.STATUS, call(r -> {
          Identity who = CALLER.get();
          return new HostApi.Status(host, version, who == null ? "anyone (--insecure)" : who.toString());
        }))
        .addMethod(HostApi.START_VM, call(vms::startVm))
        .addMethod(HostApi.STOP_VM, call(r -> vms.stopVm(r.name())))
        .addMethod(HostApi.LIST_VMS, call(r -> new HostApi.VmList(vms.listVms())))
        .addMethod(HostApi.BALLOON_VM, call(r -> vms.balloonVm(r.name(), r.bytes())))
        .addMethod(HostApi.PREPARE_INCOMING, call(r -> vms.prepareIncoming(r, CALLER.get())))
        .addMethod(HostApi.TAKE_NAMESPACE, call(r -> vms.takeNamespace(r.name(), CALLER.get())))
        .addMethod(HostApi.MIGRATE, ServerCalls.asyncServerStreamingCall((request, reply) -> {
          ServerCallStreamObserver<HostApi.MigrationUpdate> stream = (ServerCallStreamObserver<HostApi.MigrationUpdate>) reply;
          stream.setOnCancelHandler(() -> LOG.info("the caller of {} went away", request));
          try {
            QemuMigration.Result r = vms.migrate(request, u -> {
              if (!stream.isCancelled()) {
                stream.onNext(u);
              }
            }, stream::isCancelled);
            stream.onNext(new HostApi.MigrationUpdate(r.status(), r.transferredBytes(), 0, r));
            stream.onCompleted();
          } catch (Exception e) {
            stream.onError(status(request, e));
          }
        }))
        .build();
    Server server = NettyServerBuilder.forAddress(new InetSocketAddress(listen.host(), listen.port()), credentials)
        .maxInboundMessageSize(HostApi.MAX_MESSAGE_BYTES)
        .addService(tls == null ? service : ServerInterceptors.intercept(service, new CallerCheck()))
        .build().start();
    LOG.info("host API of '{}' on {}:{}{}", host, listen.host(), server.getPort(), tls == null ? " WITHOUT TLS" : "");
    return new HostApiServer(server, host);
  }

  /** A call of the service, with its exceptions as gRPC statuses (see {@link HostService}). */
  private interface Call<Q, A> {
    A apply(Q request) throws Exception;
  }

  private static <Q, A> ServerCallHandler<Q, A> call(Call<Q, A> body) {
    return ServerCalls.asyncUnaryCall((request, reply) -> {
      try {
        reply.onNext(body.apply(request));
        reply.onCompleted();
      } catch (Exception e) {
        reply.onError(status(request, e));
      }
    });
  }

  private static StatusRuntimeException status(Object request, Exception e) {
    if (e instanceof IllegalArgumentException) {
      return Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException();
    }
    if (e instanceof IllegalStateException) {
      return Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException();
    }
    LOG.warn("{} failed: {}", request, e.toString());
    return Status.INTERNAL.withDescription(String.valueOf(e.getMessage())).asRuntimeException();
  }

  /** The port it listens on (the one asked for, or the one given for 0). */
  public int port() {
    return server.getPort();
  }

  public String host() {
    return host;
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdown();
    if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
      server.shutdownNow();
    }
  }

  /** Reads the caller from its TLS certificate and refuses every role but admin and host. */
  private static final class CallerCheck implements ServerInterceptor {
    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
        ServerCallHandler<Q, A> next) {
      Identity who;
      try {
        who = ClusterTls.peer(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
      } catch (SSLPeerUnverifiedException | IllegalArgumentException e) {
        call.close(Status.UNAUTHENTICATED.withDescription("no usable client certificate: " + e.getMessage()),
            new Metadata());
        return new ServerCall.Listener<>() { };
      }
      if (!CALLERS.contains(who.role())) {
        LOG.warn("refusing {} on {}: the host API serves admins and hosts", who, call.getMethodDescriptor()
            .getFullMethodName());
        call.close(Status.PERMISSION_DENIED.withDescription(who + " may not call a host's agent (admins and hosts only)"),
            new Metadata());
        return new ServerCall.Listener<>() { };
      }
      return Contexts.interceptCall(Context.current().withValue(CALLER, who), call, headers, next);
    }
  }
}
