package io.vmd.meta;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.tls.Role;
import io.vmd.common.tls.SecurityMeters;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.util.TimeDuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One voter of the control plane's Raft group, running in this process. */
public final class MetaServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MetaServer.class);

  private final MetaConfig config;
  private final MetaStateMachine stateMachine;
  private final RaftServer server;

  private MetaServer(MetaConfig config, MeterRegistry registry) throws IOException {
    this.config = config;
    this.stateMachine = new MetaStateMachine(config.tls() == null ? null : config.tls().caCertificate(), registry);
    SecurityMeters.certificateExpiry(registry, Role.SERVER, config.tls());
    RaftGroup group = MetaPeers.group(config.cluster(), config.peers());
    RaftProperties p = properties(config);
    Path groupDir = config.dir().resolve(group.getGroupId().getUuid().toString());
    this.server = RaftServer.newBuilder()
        .setServerId(MetaPeers.peerId(config.listen()))
        .setGroup(group)
        .setProperties(p)
        .setParameters(MetaTransport.parameters(config.tls(), true, registry))
        .setStateMachine(stateMachine)
        .setOption(Files.isDirectory(groupDir) ? RaftStorage.StartupOption.RECOVER : RaftStorage.StartupOption.FORMAT)
        .build();
    MetaMetrics.register(registry, this, stateMachine);
  }

  static RaftProperties properties(MetaConfig config) {
    RaftProperties p = MetaTransport.properties();
    MetaTransport.listen(p, config.listen());
    RaftServerConfigKeys.setStorageDir(p, List.of(config.dir().toFile()));
    // A slow 2-core host must not lose its leader to a GC pause or a busy event loop.
    RaftServerConfigKeys.Rpc.setTimeoutMin(p, TimeDuration.valueOf(500, TimeUnit.MILLISECONDS));
    RaftServerConfigKeys.Rpc.setTimeoutMax(p, TimeDuration.valueOf(1000, TimeUnit.MILLISECONDS));
    RaftServerConfigKeys.Read.setOption(p, RaftServerConfigKeys.Read.Option.LINEARIZABLE);
    RaftServerConfigKeys.Snapshot.setAutoTriggerEnabled(p, true);
    RaftServerConfigKeys.Snapshot.setAutoTriggerThreshold(p, config.snapshotEvery());
    RaftServerConfigKeys.Snapshot.setRetentionFileNum(p, 2);
    return p;
  }

  /** Starts the voter; with one voter it leads at once, with more once a majority is up. */
  public static MetaServer start(MetaConfig config) {
    return start(config, new SimpleMeterRegistry());
  }

  /**
   * As above, counting what it refuses in {@code registry}: {@code vmd_auth_failures_total{role="meta"}}
   * by reason (role, signature, certificate, clock, malformed), and its certificate's expiry.
   */
  public static MetaServer start(MetaConfig config, MeterRegistry registry) {
    try {
      Files.createDirectories(config.dir());
      MetaServer s = new MetaServer(config, registry);
      s.server.start();
      LOG.info("control plane voter {} of {} on {} (data in {}; {})", MetaPeers.peerId(config.listen()),
          config.peers(), config.listen(), config.dir(), config.tls() == null
              ? "INSECURE: no TLS, commands unauthenticated"
              : "mutual TLS as " + config.tls().identity() + ", commands signed");
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start the control-plane voter on " + config.listen() + ": "
          + e.getMessage(), e);
    }
  }

  public HostPort address() {
    return config.listen();
  }

  public MetaConfig config() {
    return config;
  }

  /** The state this voter has applied (for tests and for the voter's own process). */
  public MetaView localView() {
    return stateMachine.state().view();
  }

  /** Whether this voter leads the group now. */
  public boolean isLeader() {
    try {
      return division().getInfo().isLeader();
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Why this voter is not ready, or null: ready once it knows the group's leader and has applied what
   * it knows committed (within a few entries), so it answers reads with current state.
   */
  public String notReadyBecause() {
    try {
      RaftServer.Division d = division();
      if (d.getInfo().getLeaderId() == null) {
        return "no leader known: a majority of the voters " + config.peers() + " is not up";
      }
      long lag = d.getRaftLog().getLastCommittedIndex() - d.getInfo().getLastAppliedIndex();
      return lag > 100 ? "catching up: " + lag + " committed entries not applied" : null;
    } catch (IOException e) {
      return "not started: " + e.getMessage();
    }
  }

  RaftServer.Division division() throws IOException {
    return server.getDivision(MetaPeers.groupId(config.cluster()));
  }

  /** Takes a snapshot now (tests; voters also take one every {@code snapshotEvery} entries). */
  public long snapshot() throws IOException {
    return stateMachine.takeSnapshot();
  }

  @Override
  public void close() {
    try {
      server.close();
    } catch (IOException e) {
      LOG.warn("closing the control-plane voter on {}: {}", config.listen(), e.toString());
    }
  }
}
