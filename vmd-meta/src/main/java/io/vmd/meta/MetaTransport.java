package io.vmd.meta;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.common.tls.SecurityMeters;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.conf.Parameters;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.grpc.GrpcTlsConfig;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.thirdparty.io.grpc.Grpc;
import org.apache.ratis.thirdparty.io.grpc.Metadata;
import org.apache.ratis.thirdparty.io.grpc.ServerCall;
import org.apache.ratis.thirdparty.io.grpc.ServerCallHandler;
import org.apache.ratis.thirdparty.io.grpc.ServerInterceptor;
import org.apache.ratis.thirdparty.io.grpc.Status;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the control plane's Raft traffic travels: Ratis over gRPC, with mutual TLS (TLS 1.3 is not
 * forced here: Ratis builds its own contexts) when the cluster has certificates. Only holders of a
 * certificate from the cluster's CA get a connection. On top, the voters' own RPCs are limited by
 * role: Raft's peer service to node certificates (voters), Ratis's admin service to admins; the
 * client service to admins, gateways and servers (not NBD clients), and the state machine authorizes
 * each command by its signature ({@link SignedCommands}).
 */
final class MetaTransport {
  private static final Logger LOG = LoggerFactory.getLogger(MetaTransport.class);
  /**
   * Ratis's shaded gRPC logs through java.util.logging, to stderr, at INFO on first use (a line about
   * epoll in every CLI command's output). Warnings still show. Held here: JUL keeps loggers weakly.
   */
  private static final java.util.logging.Logger GRPC_LOG = java.util.logging.Logger.getLogger(
      "org.apache.ratis.thirdparty.io.grpc");

  static {
    GRPC_LOG.setLevel(java.util.logging.Level.WARNING);
  }

  private MetaTransport() {}

  /** The properties every Ratis server or client of ours starts from. */
  static RaftProperties properties() {
    RaftProperties p = new RaftProperties();
    RaftConfigKeys.Rpc.setType(p, SupportedRpcType.GRPC);
    return p;
  }

  static void listen(RaftProperties p, HostPort address) {
    GrpcConfigKeys.Server.setHost(p, address.host());
    GrpcConfigKeys.Server.setPort(p, address.port());
  }

  /** Ratis's parameters for {@code tls} (none when null: plaintext, for --insecure clusters). */
  static Parameters parameters(ClusterTls tls, boolean server) {
    return parameters(tls, server, null);
  }

  /** As above; a server counts the calls it refuses in {@code registry}. */
  static Parameters parameters(ClusterTls tls, boolean server, MeterRegistry registry) {
    Parameters params = new Parameters();
    if (tls == null) {
      return params;
    }
    GrpcTlsConfig conf = new GrpcTlsConfig(tls.privateKey(), tls.certificate(), tls.caCertificate(), true);
    GrpcConfigKeys.TLS.setConf(params, conf);
    GrpcConfigKeys.Server.setTlsConf(params, conf);
    GrpcConfigKeys.Client.setTlsConf(params, conf);
    GrpcConfigKeys.Admin.setTlsConf(params, conf);
    if (server) {
      GrpcConfigKeys.Server.setServicesCustomizer(params, (builder, types) -> builder.intercept(new RoleCheck(registry)));
    }
    return params;
  }

  /** Which roles may call a Ratis service at all; null: the service is unknown, and refused. */
  static Role[] allowed(String service) {
    if (service.endsWith("RaftClientProtocolService")) {
      return new Role[] {Role.ADMIN, Role.GATEWAY, Role.SERVER, Role.HOST};
    }
    if (service.endsWith("RaftServerProtocolService")) {
      return new Role[] {Role.SERVER};
    }
    if (service.endsWith("AdminProtocolService")) {
      return new Role[] {Role.ADMIN};
    }
    return null;
  }

  /** Refuses a call whose peer's certificate role may not use its service. */
  private static final class RoleCheck implements ServerInterceptor {
    private final MeterRegistry registry;

    RoleCheck(MeterRegistry registry) {
      this.registry = registry;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
        ServerCallHandler<Q, R> next) {
      String service = call.getMethodDescriptor().getServiceName();
      String why;
      try {
        Identity peer = peer(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
        Role[] roles = allowed(service == null ? "" : service);
        if (roles != null) {
          for (Role r : roles) {
            if (r == peer.role()) {
              return next.startCall(call, headers);
            }
          }
        }
        why = peer + " may not call " + service;
      } catch (SSLPeerUnverifiedException | IllegalArgumentException e) {
        why = "no usable client certificate: " + e.getMessage();
      }
      LOG.warn("control plane refused a call from {}: {}", call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR),
          why);
      if (registry != null) {
        SecurityMeters.authFailure(registry, "meta", "role");
      }
      call.close(Status.PERMISSION_DENIED.withDescription(why), new Metadata());
      return new ServerCall.Listener<>() {};
    }

    private static Identity peer(SSLSession session) throws SSLPeerUnverifiedException {
      if (session == null) {
        throw new SSLPeerUnverifiedException("not a TLS connection");
      }
      Certificate[] chain = session.getPeerCertificates();
      if (chain.length == 0 || !(chain[0] instanceof X509Certificate x)) {
        throw new SSLPeerUnverifiedException("no X.509 certificate");
      }
      return Identity.of(x);
    }
  }
}
