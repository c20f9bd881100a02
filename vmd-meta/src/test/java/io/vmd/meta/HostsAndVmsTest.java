package io.vmd.meta;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.common.HostPort;
import io.vmd.common.tls.Role;
import io.vmd.protocol.ErrorCode;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The control plane's record of hypervisor hosts and the VMs they run, and who may change it. */
class HostsAndVmsTest {
  private static final Caller ADMIN = new Caller("ops", Role.ADMIN, List.of());
  private static final Caller HOST_A = new Caller("hv-a", Role.HOST, List.of("hv-a", "10.0.0.1"));
  private static final Caller HOST_B = new Caller("hv-b", Role.HOST, List.of("hv-b", "10.0.0.2"));
  private static final Caller GATEWAY = new Caller("gw", Role.GATEWAY, List.of());
  private final MetaState state = new MetaState();
  private long clock = 1_000;

  private <T> T ok(Caller who, byte[] command, MetaCodec.Reader<T> payload) throws Exception {
    return MetaCodec.reply(state.apply(command, clock, 7, who), payload);
  }

  private ErrorCode error(Caller who, byte[] command) {
    try {
      MetaCodec.reply(state.apply(command, clock, 7, who), in -> null);
      return ErrorCode.OK;
    } catch (MetaException e) {
      return e.code();
    }
  }

  private static byte[] registerHost(String name, String api) {
    HostPort a = HostPort.parse(api);
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.HOST_REGISTER);
      o.writeUTF(name);
      o.writeUTF(a.host());
      o.writeShort(a.port());
    });
  }

  private static byte[] hostStatus(String name, HostStatus s) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.HOST_STATUS);
      o.writeUTF(name);
      o.writeByte(s.ordinal());
    });
  }

  private static byte[] putVm(VmMeta vm, long expected) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VM_PUT);
      MetaCodec.writeVm(o, vm);
      o.writeLong(expected);
    });
  }

  private static byte[] removeVm(String name, long expected) {
    return MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.VM_REMOVE);
      o.writeUTF(name);
      o.writeLong(expected);
    });
  }

  @BeforeEach
  void twoHostsAndANamespace() throws Exception {
    ok(ADMIN, MetaCodec.bytes(o -> {
      o.writeByte(MetaCodec.NS_CREATE);
      o.writeUTF("swap-1");
      o.writeLong(1 << 20);
      o.writeByte(1);
      MetaCodec.writeKey(o, new byte[0]);
    }), MetaCodec::readNamespace);
    HostMeta a = ok(HOST_A, registerHost("hv-a", "10.0.0.1:7420"), MetaCodec::readHost);
    assertThat(a.status()).isEqualTo(HostStatus.ACTIVE);
    assertThat(a.registeredMillis()).isEqualTo(clock);
    ok(HOST_B, registerHost("hv-b", "10.0.0.2:7420"), MetaCodec::readHost);
  }

  @Test
  void aHostRegistersOnlyItselfAtAnAddressItsCertificateNames() {
    assertThat(error(HOST_A, registerHost("hv-b", "10.0.0.1:7420"))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(HOST_A, registerHost("hv-a", "10.0.0.9:7420"))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(GATEWAY, registerHost("gw", "10.0.0.1:7420"))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(HOST_A, hostStatus("hv-a", HostStatus.DRAINING))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(HOST_A, hostStatus("hv-b", HostStatus.ACTIVE))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(state.view().host("hv-b").api()).isEqualTo(HostPort.parse("10.0.0.2:7420"));
  }

  @Test
  void aHostRecordsItsOwnVmsAndOnlyItsOwnerMovesOrRemovesThem() throws Exception {
    VmMeta vm = VmMeta.of("web", "hv-a", "swap-1", 512 << 20, VmState.RUNNING, "");
    assertThat(error(HOST_B, putVm(vm, 0))).as("not on B").isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(GATEWAY, putVm(vm, 0))).isEqualTo(ErrorCode.UNAUTHORIZED);
    VmMeta stored = ok(HOST_A, putVm(vm, 0), MetaCodec::readVm);
    assertThat(stored.generation()).isEqualTo(1);
    assertThat(stored.target()).isEmpty();
    // B may not take it over, nor remove it.
    assertThat(error(HOST_B, putVm(stored.with(VmState.RUNNING, "hv-b", ""), 1))).isEqualTo(ErrorCode.UNAUTHORIZED);
    assertThat(error(HOST_B, removeVm("web", 1))).isEqualTo(ErrorCode.UNAUTHORIZED);
    // A migrates it to B, then records it on B: B owns the record from then on.
    clock += 10;
    VmMeta migrating = ok(HOST_A, putVm(stored.with(VmState.MIGRATING, "hv-a", "hv-b"), 1), MetaCodec::readVm);
    assertThat(migrating.target()).isEqualTo("hv-b");
    assertThat(migrating.updatedMillis()).isEqualTo(clock);
    // B, the target, records the VM's arrival on itself (its agent sees the migration complete),
    // and nowhere else.
    assertThat(error(HOST_B, putVm(migrating.with(VmState.RUNNING, "hv-a", ""), 2))).isEqualTo(ErrorCode.UNAUTHORIZED);
    VmMeta onB = ok(HOST_B, putVm(migrating.with(VmState.RUNNING, "hv-b", "hv-b"), 2), MetaCodec::readVm);
    assertThat(onB.host()).isEqualTo("hv-b");
    assertThat(onB.target()).as("only a migration has a target").isEmpty();
    assertThat(error(HOST_A, putVm(onB.with(VmState.STOPPED, "hv-a", ""), 3))).isEqualTo(ErrorCode.UNAUTHORIZED);
    ok(HOST_B, removeVm("web", 3), in -> null);
    assertThat(state.view().vm("web")).isNull();
  }

  @Test
  void aChangeNamesTheGenerationItReadSoNoUpdateIsLost() throws Exception {
    VmMeta vm = VmMeta.of("db", "hv-a", "swap-1", 256 << 20, VmState.STARTING, "");
    ok(HOST_A, putVm(vm, 0), MetaCodec::readVm);
    assertThat(error(HOST_A, putVm(vm, 0))).as("exists already").isEqualTo(ErrorCode.STALE_EPOCH);
    ok(HOST_A, putVm(vm.with(VmState.RUNNING, "hv-a", ""), 1), MetaCodec::readVm);
    assertThat(error(HOST_A, putVm(vm.with(VmState.STOPPED, "hv-a", ""), 1))).isEqualTo(ErrorCode.STALE_EPOCH);
    assertThat(error(HOST_A, removeVm("db", 1))).isEqualTo(ErrorCode.STALE_EPOCH);
    assertThat(state.view().vm("db").state()).isEqualTo(VmState.RUNNING);
  }

  @Test
  void aVmNeedsItsHostsAndNamespaceAndANamespaceSwapsOneLiveVm() throws Exception {
    assertThat(error(ADMIN, putVm(VmMeta.of("x", "hv-z", "swap-1", 1 << 30, VmState.RUNNING, ""), 0)))
        .isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(error(HOST_A, putVm(VmMeta.of("x", "hv-a", "nope", 1 << 30, VmState.RUNNING, ""), 0)))
        .isEqualTo(ErrorCode.NO_NAMESPACE);
    assertThat(error(HOST_A, putVm(VmMeta.of("x", "hv-a", "swap-1", 1 << 30, VmState.MIGRATING, "hv-z"), 0)))
        .isEqualTo(ErrorCode.NOT_FOUND);
    ok(HOST_A, putVm(VmMeta.of("x", "hv-a", "swap-1", 1 << 30, VmState.RUNNING, ""), 0), MetaCodec::readVm);
    assertThat(error(HOST_B, putVm(VmMeta.of("y", "hv-b", "swap-1", 1 << 30, VmState.STARTING, ""), 0)))
        .as("two VMs swapping on one namespace").isEqualTo(ErrorCode.EXISTS);
    // A host that still runs a VM cannot be removed; drained and emptied, it can.
    assertThat(error(ADMIN, hostStatus("hv-a", HostStatus.REMOVED))).isEqualTo(ErrorCode.BAD_REQUEST);
    ok(ADMIN, hostStatus("hv-a", HostStatus.DRAINING), in -> in.readByte());
    // Its agent restarting keeps the drain.
    assertThat(ok(HOST_A, registerHost("hv-a", "10.0.0.1:7421"), MetaCodec::readHost).status())
        .isEqualTo(HostStatus.DRAINING);
    ok(HOST_A, removeVm("x", 1), in -> null);
    ok(ADMIN, hostStatus("hv-a", HostStatus.REMOVED), in -> in.readByte());
    assertThat(state.view().host("hv-a")).isNull();
  }

  @Test
  void hostsAndVmsSurviveASnapshot() throws Exception {
    ok(HOST_A, putVm(VmMeta.of("web", "hv-a", "swap-1", 512 << 20, VmState.MIGRATING, "hv-b"), 0), MetaCodec::readVm);
    byte[] snap = MetaCodec.bytes(state::write);
    MetaState copy = new MetaState();
    copy.read(new DataInputStream(new ByteArrayInputStream(snap)));
    assertThat(copy.view()).isEqualTo(state.view());
    assertThat(copy.view().vm("web").target()).isEqualTo("hv-b");
    assertThat(copy.view().hosts()).extracting(HostMeta::name).containsExactly("hv-a", "hv-b");
  }
}
