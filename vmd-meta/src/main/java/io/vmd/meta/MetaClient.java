package io.vmd.meta;

import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.protocol.ErrorCode;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.exceptions.StateMachineException;
import org.apache.ratis.retry.ExceptionDependentRetry;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.retry.RetryPolicy;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.TimeDuration;

/**
 * Talks to the control plane: membership, namespaces and ownership. Commands go through the Raft log
 * (a retried command is applied once: Ratis keys its retry cache by client and call id); reads that
 * decide safety are linearizable. Thread-safe.
 */
public final class MetaClient implements AutoCloseable {
  private final List<HostPort> seeds;
  private final ClusterTls tls;
  private final RaftClient raft;

  private MetaClient(String cluster, List<HostPort> seeds, Duration deadline, ClusterTls tls) {
    this.seeds = List.copyOf(seeds);
    this.tls = tls;
    RaftProperties p = MetaTransport.properties();
    RaftClientConfigKeys.Rpc.setRequestTimeout(p, TimeDuration.valueOf(3, TimeUnit.SECONDS));
    this.raft = RaftClient.newBuilder()
        .setProperties(p)
        .setParameters(MetaTransport.parameters(tls, false))
        .setRaftGroup(MetaPeers.group(cluster, seeds))
        .setRetryPolicy(retryPolicy(deadline))
        .build();
  }

  /**
   * Retries every 200 ms up to {@code deadline} (a leader election, a voter restarting); a command the
   * state machine refused before the log (signature, certificate, clock) is an answer, never retried.
   */
  static RetryPolicy retryPolicy(Duration deadline) {
    long tries = Math.max(1, deadline.toMillis() / 200);
    return ExceptionDependentRetry.newBuilder()
        .setDefaultPolicy(RetryPolicies.retryUpToMaximumCountWithFixedSleep((int) tries,
            TimeDuration.valueOf(200, TimeUnit.MILLISECONDS)))
        .setExceptionToPolicy(StateMachineException.class, RetryPolicies.noRetry())
        // Ratis hands back the state machine's own exception (serialized): matched by exact class.
        .setExceptionToPolicy(SignedCommands.Refused.class, RetryPolicies.noRetry())
        .build();
  }

  /** A client of an insecure control plane whose voters include {@code seeds} (any order). */
  public static MetaClient connect(String cluster, List<HostPort> seeds) {
    return new MetaClient(cluster, seeds, MetaConfig.REQUEST_DEADLINE, null);
  }

  public static MetaClient connect(String cluster, List<HostPort> seeds, Duration deadline) {
    return new MetaClient(cluster, seeds, deadline, null);
  }

  /**
   * A client that connects with mutual TLS as {@code tls}'s certificate and signs every command with
   * its key (null: an insecure cluster); the control plane lets it do what its certificate's role allows.
   */
  public static MetaClient connect(String cluster, List<HostPort> seeds, Duration deadline, ClusterTls tls) {
    return new MetaClient(cluster, seeds, deadline, tls);
  }

  public List<HostPort> seeds() {
    return seeds;
  }

  // ---------------------------------------------------------------- membership

  public Member register(String id, HostPort address, boolean persistent) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.REGISTER);
      o.writeUTF(id);
      o.writeUTF(address.host());
      o.writeShort(address.port());
      o.writeBoolean(persistent);
    }), MetaCodec::readMember);
  }

  public Member setStatus(int slot, ServerStatus status) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.SET_STATUS);
      o.writeShort(slot);
      o.writeByte(status.ordinal());
    }), MetaCodec::readMember);
  }

  // ---------------------------------------------------------------- hosts and VMs

  /** Registers hypervisor host {@code name} (its agent's identity) with its agent's API at {@code api}. */
  public HostMeta registerHost(String name, HostPort api) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.HOST_REGISTER);
      o.writeUTF(name);
      o.writeUTF(api.host());
      o.writeShort(api.port());
    }), MetaCodec::readHost);
  }

  /** Drains (or reactivates) host {@code name}; REMOVED takes it out of the cluster (it must run no VM). */
  public void setHostStatus(String name, HostStatus status) throws MetaException {
    command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.HOST_STATUS);
      o.writeUTF(name);
      o.writeByte(status.ordinal());
    }), in -> in.readByte());
  }

  /**
   * Records {@code vm} if its record is still at {@code expectedGeneration} (0: it must not exist yet);
   * returns it as stored, with its new generation. STALE_EPOCH when another change came first.
   */
  public VmMeta putVm(VmMeta vm, long expectedGeneration) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VM_PUT);
      MetaCodec.writeVm(o, vm);
      o.writeLong(expectedGeneration);
    }), MetaCodec::readVm);
  }

  /** Forgets VM {@code name} if its record is still at {@code expectedGeneration}. */
  public void removeVm(String name, long expectedGeneration) throws MetaException {
    command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VM_REMOVE);
      o.writeUTF(name);
      o.writeLong(expectedGeneration);
    }), in -> null);
  }

  // ---------------------------------------------------------------- namespaces

  public NamespaceMeta createNamespace(String name, long sizeBytes, int replicas) throws MetaException {
    return createNamespace(name, sizeBytes, replicas, new byte[0]);
  }

  /** A namespace whose pages are sealed under the key {@code wrappedKey} wraps (empty: not sealed). */
  public NamespaceMeta createNamespace(String name, long sizeBytes, int replicas, byte[] wrappedKey)
      throws MetaException {
    if (replicas < 1 || replicas > 255) {
      throw new MetaException(ErrorCode.BAD_REQUEST, "replica count " + replicas + " outside 1..8");
    }
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_CREATE);
      o.writeUTF(name);
      o.writeLong(sizeBytes);
      o.writeByte(replicas);
      MetaCodec.writeKey(o, wrappedKey);
    }), MetaCodec::readNamespace);
  }

  /** Lets the NBD client {@code client} (a certificate name) open the namespace, or ({@code grant} false) no longer. */
  public NamespaceMeta grant(String name, String client, boolean grant) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.GRANT);
      o.writeUTF(name);
      o.writeUTF(client);
      o.writeBoolean(grant);
    }), MetaCodec::readNamespace);
  }

  public Tombstone deleteNamespace(String name, boolean force) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_DELETE);
      o.writeUTF(name);
      o.writeBoolean(force);
    }), MetaCodec::readTombstone);
  }

  /** What a claim found: the namespace after it, and the control plane's clock then. */
  public record Claim(NamespaceMeta namespace, long nowMillis) {
    /** Whether {@code owner} holds the namespace now. */
    public boolean grantedTo(String owner) {
      return namespace.owner().equals(owner) && namespace.leaseUntilMillis() > nowMillis;
    }
  }

  /**
   * Asks for ownership of the namespace: granted at a new epoch when nobody holds a live lease, or
   * always with {@code force} (a hand-off). {@code expectedEpoch} (≥ 0) makes it a compare-and-set.
   */
  public Claim claim(String name, String owner, Duration lease, boolean force, long expectedEpoch)
      throws MetaException {
    return command(claimCommand(name, owner, lease, force, expectedEpoch),
        in -> new Claim(MetaCodec.readNamespace(in), in.readLong()));
  }

  private static byte[] claimCommand(String name, String owner, Duration lease, boolean force, long expectedEpoch) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.CLAIM);
      o.writeUTF(name);
      o.writeUTF(owner);
      o.writeLong(lease.toMillis());
      o.writeBoolean(force);
      o.writeLong(expectedEpoch);
    });
  }

  /**
   * Renews every lease {@code owner} holds, in one command; completes with the namespaces it still holds
   * (id to epoch). A namespace missing from the answer, or at another epoch, was taken from it.
   */
  public CompletableFuture<Map<Integer, Long>> renewAsync(String owner, Duration lease) {
    return commandAsync(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.RENEW);
      o.writeUTF(owner);
      o.writeLong(lease.toMillis());
    }), MetaCodec::readHeld);
  }

  public NamespaceMeta release(int namespaceId, String owner, long epoch) throws MetaException {
    return command(MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.RELEASE);
      o.writeInt(namespaceId);
      o.writeUTF(owner);
      o.writeLong(epoch);
    }), MetaCodec::readNamespace);
  }

  /** The owner names servers it is about to place pages on, so that any later reader waits for them. */
  public CompletableFuture<NamespaceMeta> addServersAsync(int namespaceId, String owner, long epoch, int[] slots) {
    return commandAsync(serversCommand(MetaCodec.ADD_SERVERS, namespaceId, owner, epoch, slots),
        MetaCodec::readNamespace);
  }

  /** The owner takes servers that hold nothing of the namespace out of its server set. */
  public NamespaceMeta removeServers(int namespaceId, String owner, long epoch, int[] slots) throws MetaException {
    return command(serversCommand(MetaCodec.REMOVE_SERVERS, namespaceId, owner, epoch, slots),
        MetaCodec::readNamespace);
  }

  private static byte[] serversCommand(byte op, int namespaceId, String owner, long epoch, int[] slots) {
    return MetaCodec.bytes(o -> {
      o.writeByte(op);
      o.writeInt(namespaceId);
      o.writeUTF(owner);
      o.writeLong(epoch);
      MetaCodec.writeSlots(o, slots);
    });
  }

  // ---------------------------------------------------------------- reads

  /** Everything, linearizable: no write acknowledged before this call is missing from it. */
  public MetaView view() throws MetaException {
    return viewIfChanged(-1, true);
  }

  /**
   * The view when its version differs from {@code since}, else null. {@code linearizable} false reads
   * the leader's applied state without a round to the followers (for followers polling for changes).
   */
  public MetaView viewIfChanged(long since, boolean linearizable) throws MetaException {
    byte[] q = MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VIEW);
      o.writeLong(since);
    });
    try {
      Message m = Message.valueOf(ByteString.copyFrom(q));
      RaftClientReply r = linearizable ? raft.io().sendReadOnly(m) : raft.io().sendReadOnlyNonLinearizable(m);
      return MetaCodec.reply(bytesOf(r), in -> in.readBoolean() ? MetaCodec.readView(in) : null);
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  /** {@link #view()} without blocking: for callers on an event loop. */
  public CompletableFuture<MetaView> viewAsync() {
    byte[] q = MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VIEW);
      o.writeLong(-1);
    });
    return raft.async().sendReadOnly(Message.valueOf(ByteString.copyFrom(q))).thenApply(r -> {
      try {
        return MetaCodec.reply(bytesOf(r), in -> in.readBoolean() ? MetaCodec.readView(in) : null);
      } catch (IOException | MetaException e) {
        throw new CompletionException(e);
      }
    }).exceptionally(e -> {
      Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
      throw new CompletionException(c instanceof MetaException me ? me : unreachable(c));
    });
  }

  // ---------------------------------------------------------------- plumbing

  private <T> T command(byte[] command, MetaCodec.Reader<T> payload) throws MetaException {
    try {
      RaftClientReply r = raft.io().send(signed(command));
      return MetaCodec.reply(bytesOf(r), payload);
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  private <T> CompletableFuture<T> commandAsync(byte[] command, MetaCodec.Reader<T> payload) {
    return raft.async().send(signed(command)).thenApply(r -> {
      try {
        return MetaCodec.reply(bytesOf(r), payload);
      } catch (IOException | MetaException e) {
        throw new CompletionException(e);
      }
    }).exceptionally(e -> {
      Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
      if (c instanceof MetaException me) {
        throw new CompletionException(me);
      }
      throw new CompletionException(unreachable(c));
    });
  }

  private Message signed(byte[] command) {
    return Message.valueOf(ByteString.copyFrom(SignedCommands.seal(command, tls)));
  }

  private static byte[] bytesOf(RaftClientReply r) throws IOException {
    if (!r.isSuccess()) {
      throw r.getException() != null ? r.getException() : new IOException("control plane refused the request");
    }
    return r.getMessage().getContent().toByteArray();
  }

  private MetaException unreachable(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof SignedCommands.Refused) {
        return new MetaException(ErrorCode.UNAUTHORIZED, "control plane refused: " + c.getMessage(), e);
      }
      if (c instanceof StateMachineException) {
        // The leader refused the command's signature or certificate: an answer, not an outage.
        String m = String.valueOf(c.getMessage());
        int at = m.indexOf(SignedCommands.Refused.class.getName());
        return new MetaException(ErrorCode.UNAUTHORIZED, "control plane refused: " + (at < 0 ? m
            : m.substring(at + SignedCommands.Refused.class.getName().length()).replaceFirst("^: ", "")), e);
      }
    }
    return new MetaException(ErrorCode.UNAVAILABLE, "control plane " + seeds + " did not answer: " + e.getMessage()
        + tlsHint(e), e);
  }

  /** What a failed TLS handshake most likely means, when the failure looks like one; else "". */
  private String tlsHint(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      String m = String.valueOf(c.getMessage());
      if (c instanceof SSLException || m.contains("Network closed for unknown reason")
          || m.contains("PKIX") || m.contains("certificate")) {
        return tls == null
            ? " (this client has no certificates; a secure control plane closes such connections: give --certs-dir)"
            : " (TLS failed: " + c.getClass().getSimpleName() + ": " + m + "; the control plane and this host"
                + " must share the cluster's CA, and the voters' certificates must name the addresses dialled)";
      }
    }
    return "";
  }

  @Override
  public void close() {
    try {
      raft.close();
    } catch (IOException e) {
      // closing: nothing left to do
    }
  }
}
