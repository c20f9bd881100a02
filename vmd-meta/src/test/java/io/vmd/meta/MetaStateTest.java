package io.vmd.meta;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.common.HostPort;
import io.vmd.protocol.ErrorCode;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MetaStateTest {
  private final MetaState state = new MetaState();
  private long clock = 1_000;

  private <T> T ok(byte[] command, MetaCodec.Reader<T> payload) throws Exception {
    return MetaCodec.reply(state.apply(command, clock, 7), payload);
  }

  private ErrorCode error(byte[] command) {
    try {
      MetaCodec.reply(state.apply(command, clock, 7), in -> null);
      return ErrorCode.OK;
    } catch (MetaException e) {
      return e.code();
    }
  }

  private static byte[] register(String id, String hostPort, boolean persistent) {
    HostPort a = HostPort.parse(hostPort);
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.REGISTER);
      o.writeUTF(id);
      o.writeUTF(a.host());
      o.writeShort(a.port());
      o.writeBoolean(persistent);
    });
  }

  private static byte[] create(String name) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_CREATE);
      o.writeUTF(name);
      o.writeLong(1 << 20);
      o.writeByte(2);
      MetaCodec.writeKey(o, new byte[0]);
    });
  }

  private static byte[] delete(String name, boolean force) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_DELETE);
      o.writeUTF(name);
      o.writeBoolean(force);
    });
  }

  private static byte[] claim(String name, String owner, long lease, boolean force) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.CLAIM);
      o.writeUTF(name);
      o.writeUTF(owner);
      o.writeLong(lease);
      o.writeBoolean(force);
      o.writeLong(-1);
    });
  }

  private static byte[] servers(byte op, int ns, String owner, long epoch, int... slots) {
    return MetaCodec.bytes(o -> {
      o.writeByte(op);
      o.writeInt(ns);
      o.writeUTF(owner);
      o.writeLong(epoch);
      MetaCodec.writeSlots(o, slots);
    });
  }

  @Test
  void quotasBoundIdsLeasesAndTheNumberOfNamespaces() throws Exception {
    String longId = "g".repeat(MetaState.MAX_ID_LENGTH + 1);
    assertThat(error(register(longId, "127.0.0.1:7401", false))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(register("s\n1", "127.0.0.1:7401", false))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(register("s1", "h".repeat(MetaState.MAX_ID_LENGTH + 1) + ":7401", false)))
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(register("g".repeat(MetaState.MAX_ID_LENGTH), "127.0.0.1:7401", false))).isEqualTo(ErrorCode.OK);

    assertThat(error(create("vm"))).isEqualTo(ErrorCode.OK);
    assertThat(error(claim("vm", longId, 5_000, false))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(claim("vm", "gw", MetaState.MAX_LEASE_MILLIS + 1, false))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(claim("vm", "gw", 0, false))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(error(claim("vm", "gw", MetaState.MAX_LEASE_MILLIS, false))).isEqualTo(ErrorCode.OK);
    assertThat(error(renew("gw", 24 * 3600_000L))).isEqualTo(ErrorCode.BAD_REQUEST);
    // A refused renewal changed nothing: the lease is still the one granted, and runs out.
    clock += MetaState.MAX_LEASE_MILLIS + 1;
    assertThat(error(claim("vm", "other", 5_000, false))).isEqualTo(ErrorCode.OK);
    assertThat(ok(claim("vm", "gw", 5_000, false), MetaCodec::readNamespace).owner()).isEqualTo("other");

    for (int i = 1; i < MetaState.MAX_NAMESPACES; i++) {
      assertThat(error(create("n" + i))).isEqualTo(ErrorCode.OK);
    }
    assertThat(error(create("one-more"))).isEqualTo(ErrorCode.NO_SPACE);
    assertThat(error(delete("n1", false))).isEqualTo(ErrorCode.OK);
    assertThat(error(create("one-more"))).isEqualTo(ErrorCode.OK);
  }

  @Test
  void namespaceIdsAreNeverReusedAfterADelete() throws Exception {
    NamespaceMeta a = ok(create("a"), MetaCodec::readNamespace);
    NamespaceMeta b = ok(create("b"), MetaCodec::readNamespace);
    ok(delete("b", false), MetaCodec::readTombstone);
    NamespaceMeta b2 = ok(create("b"), MetaCodec::readNamespace);
    assertThat(a.id()).isEqualTo(1);
    assertThat(b.id()).isEqualTo(2);
    assertThat(b2.id()).isEqualTo(3);
    assertThat(state.view().tombstones()).extracting(Tombstone::id).containsExactly(2);
    assertThat(error(create("a"))).isEqualTo(ErrorCode.EXISTS);
  }

  @Test
  void everyGrantMovesTheEpochAndALiveLeaseKeepsOthersOut() throws Exception {
    ok(create("vm"), MetaCodec::readNamespace);
    NamespaceMeta first = ok(claim("vm", "gw-a", 5_000, false), MetaCodec::readNamespace);
    assertThat(first.owner()).isEqualTo("gw-a");
    assertThat(first.epoch()).isEqualTo(1);
    // A second opener while the lease runs: nothing changes, it learns who owns it.
    NamespaceMeta look = ok(claim("vm", "gw-b", 5_000, false), MetaCodec::readNamespace);
    assertThat(look.owner()).isEqualTo("gw-a");
    assertThat(look.epoch()).isEqualTo(1);
    // The same owner claiming again still gets a new epoch: two attaches never share one.
    NamespaceMeta again = ok(claim("vm", "gw-a", 5_000, false), MetaCodec::readNamespace);
    assertThat(again.epoch()).isEqualTo(2);
    // A hand-off takes it at once.
    NamespaceMeta handed = ok(claim("vm", "gw-b", 5_000, true), MetaCodec::readNamespace);
    assertThat(handed.owner()).isEqualTo("gw-b");
    assertThat(handed.epoch()).isEqualTo(3);
    // The old owner can no longer renew, add servers or release.
    assertThat(error(servers(MetaCodec.ADD_SERVERS, handed.id(), "gw-a", 2, 1))).isEqualTo(ErrorCode.STALE_EPOCH);
    // Once the lease has run out, anyone may claim it.
    clock += 5_001;
    NamespaceMeta after = ok(claim("vm", "gw-c", 5_000, false), MetaCodec::readNamespace);
    assertThat(after.owner()).isEqualTo("gw-c");
    assertThat(after.epoch()).isEqualTo(4);
  }

  private static byte[] renew(String owner, long lease) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.RENEW);
      o.writeUTF(owner);
      o.writeLong(lease);
    });
  }

  private Map<Integer, Long> renewed(String owner, long lease) throws Exception {
    return ok(renew(owner, lease), MetaCodec::readHeld);
  }

  @Test
  void oneRenewalKeepsEveryLeaseOfAnOwnerAndSaysWhichWereTaken() throws Exception {
    NamespaceMeta a = ok(create("a"), MetaCodec::readNamespace);
    NamespaceMeta b = ok(create("b"), MetaCodec::readNamespace);
    ok(claim("a", "gw", 1_000, false), MetaCodec::readNamespace);
    ok(claim("b", "gw", 1_000, false), MetaCodec::readNamespace);
    long version = state.version();
    clock += 900;
    assertThat(renewed("gw", 1_000)).containsEntry(a.id(), 1L).containsEntry(b.id(), 1L);
    assertThat(state.version()).as("renewals wake no follower").isEqualTo(version);
    clock += 900; // past the first lease, within the renewed one
    assertThat(ok(claim("a", "other", 1_000, false), MetaCodec::readNamespace).owner()).isEqualTo("gw");
    ok(claim("b", "other", 1_000, true), MetaCodec::readNamespace);
    assertThat(renewed("gw", 1_000)).containsOnlyKeys(a.id());
    // Without renewals the lease runs out.
    clock += 1_001;
    assertThat(ok(claim("a", "other", 1_000, false), MetaCodec::readNamespace).owner()).isEqualTo("other");
    assertThat(renewed("gw", 1_000)).isEmpty();
  }

  @Test
  void aDeleteOfANamespaceInUseNeedsForce() throws Exception {
    ok(create("vm"), MetaCodec::readNamespace);
    ok(claim("vm", "gw-a", 5_000, false), MetaCodec::readNamespace);
    assertThat(error(delete("vm", false))).isEqualTo(ErrorCode.EXISTS);
    assertThat(error(delete("vm", true))).isEqualTo(ErrorCode.OK);
  }

  @Test
  void serversGetSlotsAndANewProcessAtAnAddressRetiresTheOldOne() throws Exception {
    Member a = ok(register("a", "127.0.0.1:7401", false), MetaCodec::readMember);
    Member b = ok(register("b", "127.0.0.1:7402", true), MetaCodec::readMember);
    assertThat(a.slot()).isEqualTo(1);
    assertThat(b.slot()).isEqualTo(2);
    assertThat(a.status()).isEqualTo(ServerStatus.JOINING);
    // An in-memory server restarted: a new id at the same address. The old one's pages are gone.
    Member a2 = ok(register("a2", "127.0.0.1:7401", false), MetaCodec::readMember);
    assertThat(a2.slot()).isEqualTo(3);
    assertThat(state.view().servers()).filteredOn(m -> m.id().equals("a"))
        .extracting(Member::status).containsExactly(ServerStatus.REMOVED);
    // A persisted server back with its id keeps its slot, even at another address.
    Member b2 = ok(register("b", "127.0.0.1:7409", true), MetaCodec::readMember);
    assertThat(b2.slot()).isEqualTo(2);
    assertThat(b2.address()).isEqualTo(HostPort.parse("127.0.0.1:7409"));
    // A removed id cannot come back.
    assertThat(error(register("a", "127.0.0.1:7408", false))).isEqualTo(ErrorCode.EXISTS);
  }

  @Test
  void onlyTheOwnerChangesTheServerSet() throws Exception {
    ok(register("a", "127.0.0.1:7401", false), MetaCodec::readMember);
    ok(register("b", "127.0.0.1:7402", false), MetaCodec::readMember);
    NamespaceMeta ns = ok(create("vm"), MetaCodec::readNamespace);
    NamespaceMeta owned = ok(claim("vm", "gw", 5_000, false), MetaCodec::readNamespace);
    assertThat(error(servers(MetaCodec.ADD_SERVERS, ns.id(), "other", owned.epoch(), 1)))
        .isEqualTo(ErrorCode.STALE_EPOCH);
    NamespaceMeta added = ok(servers(MetaCodec.ADD_SERVERS, ns.id(), "gw", owned.epoch(), 2, 1, 2),
        MetaCodec::readNamespace);
    assertThat(added.servers()).containsExactly(1, 2);
    assertThat(error(servers(MetaCodec.ADD_SERVERS, ns.id(), "gw", owned.epoch(), 9))).isEqualTo(ErrorCode.BAD_REQUEST);
    NamespaceMeta removed = ok(servers(MetaCodec.REMOVE_SERVERS, ns.id(), "gw", owned.epoch(), 1),
        MetaCodec::readNamespace);
    assertThat(removed.servers()).containsExactly(2);
  }

  @Test
  void theClockOnlyMovesForward() throws Exception {
    ok(create("vm"), MetaCodec::readNamespace);
    ok(claim("vm", "gw-a", 1_000, false), MetaCodec::readNamespace);
    // A new leader whose clock is behind the old one's does not bring an expired... or live lease back.
    clock -= 10_000;
    NamespaceMeta n = ok(claim("vm", "gw-b", 1_000, false), MetaCodec::readNamespace);
    assertThat(n.owner()).isEqualTo("gw-a");
    assertThat(state.view().nowMillis()).isEqualTo(1_000);
  }

  @Test
  void garbageIsABadRequestAndChangesNothing() {
    long before = state.version();
    Random r = new Random(42);
    for (int i = 0; i < 2000; i++) {
      byte[] junk = new byte[r.nextInt(40)];
      r.nextBytes(junk);
      state.apply(junk, clock, 7);
    }
    // Random bytes may form a valid command now and then; what matters is that nothing throws and
    // the state still round-trips.
    assertThat(state.version()).isGreaterThanOrEqualTo(before);
  }

  @Test
  void aSnapshotRoundTrips() throws Exception {
    ok(register("a", "127.0.0.1:7401", true), MetaCodec::readMember);
    ok(create("x"), MetaCodec::readNamespace);
    ok(create("y"), MetaCodec::readNamespace);
    ok(delete("x", false), MetaCodec::readTombstone);
    ok(claim("y", "gw", 5_000, false), MetaCodec::readNamespace);
    byte[] snap = MetaCodec.bytes(state::write);
    MetaState copy = new MetaState();
    copy.read(new DataInputStream(new ByteArrayInputStream(snap)));
    assertThat(copy.view()).isEqualTo(state.view());
    // The copy goes on as the original would: the next id is still fresh.
    NamespaceMeta z = MetaCodec.reply(copy.apply(create("z"), clock, 7), MetaCodec::readNamespace);
    assertThat(z.id()).isEqualTo(3);
  }
}
