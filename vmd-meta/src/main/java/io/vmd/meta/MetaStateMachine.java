package io.vmd.meta;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmd.common.tls.SecurityMeters;
import io.vmd.protocol.ErrorCode;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.concurrent.CompletableFuture;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.protocol.TermIndex;
import org.apache.ratis.server.storage.FileInfo;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.statemachine.StateMachineStorage;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.statemachine.impl.SimpleStateMachineStorage;
import org.apache.ratis.statemachine.impl.SingleFileSnapshotInfo;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.MD5FileUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link MetaState} as a Ratis state machine. The leader stamps each command with its clock when it
 * takes it (the first 8 bytes of the log entry; a random long follows, then who sent it), so leases
 * are judged by one clock, and commands by one judgement of their sender, on every voter.
 * Snapshots are the whole state in one file.
 */
final class MetaStateMachine extends BaseStateMachine {
  private static final Logger LOG = LoggerFactory.getLogger(MetaStateMachine.class);

  private static final SecureRandom RANDOM = new SecureRandom();

  private final MetaState state = new MetaState();
  private final SimpleStateMachineStorage storage = new SimpleStateMachineStorage();
  /** The cluster's CA, which must have issued every command's certificate; null: an insecure cluster. */
  private final X509Certificate ca;
  private final MeterRegistry registry;
  private volatile long lastSnapshotMillis = -1;

  MetaStateMachine(X509Certificate ca, MeterRegistry registry) {
    this.ca = ca;
    this.registry = registry;
  }

  MetaState state() {
    return state;
  }

  /** When this voter last wrote or loaded a snapshot (epoch millis), or -1 if it has none. */
  long lastSnapshotMillis() {
    return lastSnapshotMillis;
  }

  @Override
  public void initialize(RaftServer server, RaftGroupId groupId, RaftStorage raftStorage) throws IOException {
    super.initialize(server, groupId, raftStorage);
    storage.init(raftStorage);
    reinitialize();
  }

  @Override
  public void reinitialize() throws IOException {
    SingleFileSnapshotInfo snap = storage.loadLatestSnapshot();
    if (snap == null) {
      return;
    }
    File f = snap.getFile().getPath().toFile();
    if (snap.hasMd5()) {
      MD5FileUtil.verifySavedMD5(f, snap.getFile().getFileDigest());
    }
    try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(f.toPath())))) {
      state.read(in);
    }
    setLastAppliedTermIndex(snap.getTermIndex());
    lastSnapshotMillis = f.lastModified();
    LOG.info("control plane state loaded from snapshot {} (version {})", snap.getTermIndex(), state.version());
  }

  @Override
  public StateMachineStorage getStateMachineStorage() {
    return storage;
  }

  @Override
  public long takeSnapshot() throws IOException {
    TermIndex last = getLastAppliedTermIndex();
    if (last == null || last.getIndex() < 0) {
      return -1;
    }
    File f = storage.getSnapshotFile(last.getTerm(), last.getIndex());
    File tmp = new File(f.getPath() + ".tmp");
    try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(tmp.toPath())))) {
      state.write(out);
    }
    Files.move(tmp.toPath(), f.toPath(), StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
    storage.updateLatestSnapshot(new SingleFileSnapshotInfo(
        new FileInfo(f.toPath(), MD5FileUtil.computeAndSaveMd5ForFile(f)), last));
    lastSnapshotMillis = System.currentTimeMillis();
    return last.getIndex();
  }

  /**
   * On the leader: checks who sent the command (a bad signature or a foreign certificate never enters
   * the log: the sender gets the reason), then logs the leader's clock, a random number it drew, the
   * caller and the command.
   */
  @Override
  public TransactionContext startTransaction(RaftClientRequest request) throws IOException {
    long now = System.currentTimeMillis();
    SignedCommands.Opened opened;
    try {
      opened = SignedCommands.open(request.getMessage().getContent().toByteArray(), ca, now);
    } catch (SignedCommands.Refused e) {
      LOG.warn("control plane refused a command from client {}: {}", request.getClientId(), e.getMessage());
      SecurityMeters.authFailure(registry, "meta", e.reason);
      throw e;
    }
    byte[] entry = MetaCodec.bytes(o -> {
      o.writeLong(now);
      o.writeLong(RANDOM.nextLong());
      opened.caller().write(o);
      o.write(opened.command());
    });
    return TransactionContext.newBuilder().setStateMachine(this).setClientRequest(request)
        .setLogData(ByteString.copyFrom(entry)).build();
  }

  @Override
  public CompletableFuture<Message> applyTransaction(TransactionContext trx) {
    LogEntryProto entry = trx.getLogEntry();
    byte[] data = entry.getStateMachineLogEntry().getLogData().toByteArray();
    byte[] reply;
    try {
      DataInputStream in = MetaCodec.in(data, 0);
      long millis = in.readLong();
      long random = in.readLong();
      Caller caller = Caller.read(in);
      reply = state.apply(in.readAllBytes(), millis, random, caller);
    } catch (IOException | RuntimeException e) {
      reply = MetaCodec.error(ErrorCode.BAD_REQUEST, "unreadable log entry " + entry.getIndex() + ": " + e);
    }
    updateLastAppliedTermIndex(entry.getTerm(), entry.getIndex());
    return CompletableFuture.completedFuture(Message.valueOf(ByteString.copyFrom(reply)));
  }

  @Override
  public CompletableFuture<Message> query(Message request) {
    return CompletableFuture.completedFuture(
        Message.valueOf(ByteString.copyFrom(state.query(request.getContent().toByteArray()))));
  }
}
