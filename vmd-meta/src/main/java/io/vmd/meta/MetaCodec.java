package io.vmd.meta;

import io.vmd.common.HostPort;
import io.vmd.protocol.ErrorCode;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The bytes of control-plane commands, queries and replies, and of the state machine's snapshot.
 * Big-endian, through Data streams: these messages are few and small, nothing here is on the page path.
 */
final class MetaCodec {
  // Commands (go through the Raft log).
  static final byte REGISTER = 1;
  static final byte SET_STATUS = 2;
  static final byte NS_CREATE = 3;
  static final byte NS_DELETE = 4;
  static final byte CLAIM = 5;
  static final byte RENEW = 6;
  static final byte RELEASE = 7;
  static final byte ADD_SERVERS = 8;
  static final byte REMOVE_SERVERS = 9;
  static final byte GRANT = 10;
  static final byte HOST_REGISTER = 11;
  static final byte HOST_STATUS = 12;
  static final byte VM_PUT = 13;
  static final byte VM_REMOVE = 14;
  // Queries (read from the state machine).
  static final byte VIEW = 100;

  private MetaCodec() {}

  @FunctionalInterface
  interface Writer {
    void write(DataOutputStream out) throws IOException;
  }

  @FunctionalInterface
  interface Reader<T> {
    T read(DataInputStream in) throws IOException;
  }

  static byte[] bytes(Writer w) {
    ByteArrayOutputStream b = new ByteArrayOutputStream(64);
    try (DataOutputStream out = new DataOutputStream(b)) {
      w.write(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return b.toByteArray();
  }

  static DataInputStream in(byte[] b, int offset) {
    return new DataInputStream(new ByteArrayInputStream(b, offset, b.length - offset));
  }

  /** A successful reply: status 0, then the payload. */
  static byte[] ok(Writer payload) {
    return bytes(out -> {
      out.writeByte(0);
      payload.write(out);
    });
  }

  static byte[] error(ErrorCode code, String message) {
    return bytes(out -> {
      out.writeByte(code.code);
      out.writeUTF(message);
    });
  }

  /** Reads a reply: its payload, or the error it carries as an exception. */
  static <T> T reply(byte[] b, Reader<T> payload) throws MetaException {
    try {
      DataInputStream in = in(b, 0);
      int status = in.readUnsignedByte();
      if (status != 0) {
        throw new MetaException(ErrorCode.of(status), in.readUTF());
      }
      return payload.read(in);
    } catch (IOException e) {
      throw new MetaException(ErrorCode.INTERNAL, "unreadable control-plane reply: " + e);
    }
  }

  static void writeMember(DataOutputStream out, Member m) throws IOException {
    out.writeUTF(m.id());
    out.writeShort(m.slot());
    out.writeUTF(m.address().host());
    out.writeShort(m.address().port());
    out.writeByte(m.status().ordinal());
    out.writeBoolean(m.persistent());
  }

  static Member readMember(DataInputStream in) throws IOException {
    String id = in.readUTF();
    int slot = in.readUnsignedShort();
    HostPort a = new HostPort(in.readUTF(), in.readUnsignedShort());
    ServerStatus s = ServerStatus.values()[in.readUnsignedByte()];
    return new Member(id, slot, a, s, in.readBoolean());
  }

  static void writeNamespace(DataOutputStream out, NamespaceMeta n) throws IOException {
    out.writeInt(n.id());
    out.writeUTF(n.name());
    out.writeLong(n.sizeBytes());
    out.writeByte(n.replicas());
    out.writeLong(n.epoch());
    out.writeUTF(n.owner());
    out.writeLong(n.leaseUntilMillis());
    writeSlots(out, n.servers());
    writeKey(out, n.wrappedKey());
    out.writeByte(n.grants().size());
    for (String g : n.grants()) {
      out.writeUTF(g);
    }
  }

  /** The newest snapshot format, which every query reply uses too. */
  static final int FORMAT = 5;

  static NamespaceMeta readNamespace(DataInputStream in) throws IOException {
    return readNamespace(in, FORMAT);
  }

  /** As snapshot {@code format} wrote it: before 3 without the wrapped key, before 4 without grants. */
  static NamespaceMeta readNamespace(DataInputStream in, int format) throws IOException {
    int id = in.readInt();
    String name = in.readUTF();
    long size = in.readLong();
    int replicas = in.readUnsignedByte();
    long epoch = in.readLong();
    String owner = in.readUTF();
    long lease = in.readLong();
    int[] servers = readSlots(in);
    byte[] key = format >= 3 ? readKey(in) : new byte[0];
    List<String> grants = new ArrayList<>();
    for (int n = format >= 4 ? in.readUnsignedByte() : 0; n > 0; n--) {
      grants.add(in.readUTF());
    }
    return new NamespaceMeta(id, name, size, replicas, epoch, owner, lease, servers, key, grants);
  }

  static void writeKey(DataOutputStream out, byte[] key) throws IOException {
    out.writeShort(key.length);
    out.write(key);
  }

  static byte[] readKey(DataInputStream in) throws IOException {
    int n = in.readUnsignedShort();
    if (n > NamespaceMeta.MAX_WRAPPED_KEY) {
      throw new IOException("wrapped key of " + n + " bytes");
    }
    byte[] key = new byte[n];
    in.readFully(key);
    return key;
  }

  static void writeSlots(DataOutputStream out, int[] slots) throws IOException {
    out.writeInt(slots.length);
    for (int s : slots) {
      out.writeShort(s);
    }
  }

  static int[] readSlots(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > Member.MAX_SLOT) {
      throw new IOException("slot count " + n);
    }
    int[] s = new int[n];
    for (int i = 0; i < n; i++) {
      s[i] = in.readUnsignedShort();
    }
    return s;
  }

  /** A renewal's answer: the namespaces the owner holds, id to epoch. */
  static Map<Integer, Long> readHeld(DataInputStream in) throws IOException {
    int n = in.readInt();
    Map<Integer, Long> held = new HashMap<>();
    for (int i = 0; i < n; i++) {
      held.put(in.readInt(), in.readLong());
    }
    return held;
  }

  static void writeTombstone(DataOutputStream out, Tombstone t) throws IOException {
    out.writeInt(t.id());
    out.writeUTF(t.name());
    out.writeLong(t.deletedAtMillis());
  }

  static Tombstone readTombstone(DataInputStream in) throws IOException {
    return new Tombstone(in.readInt(), in.readUTF(), in.readLong());
  }

  static void writeView(DataOutputStream out, MetaView v) throws IOException {
    out.writeLong(v.clusterId());
    out.writeLong(v.version());
    out.writeLong(v.nowMillis());
    out.writeInt(v.nextNamespaceId());
    out.writeInt(v.servers().size());
    for (Member m : v.servers()) {
      writeMember(out, m);
    }
    out.writeInt(v.namespaces().size());
    for (NamespaceMeta n : v.namespaces()) {
      writeNamespace(out, n);
    }
    out.writeInt(v.tombstones().size());
    for (Tombstone t : v.tombstones()) {
      writeTombstone(out, t);
    }
    out.writeInt(v.hosts().size());
    for (HostMeta h : v.hosts()) {
      writeHost(out, h);
    }
    out.writeInt(v.vms().size());
    for (VmMeta m : v.vms()) {
      writeVm(out, m);
    }
  }

  static void writeHost(DataOutputStream out, HostMeta h) throws IOException {
    out.writeUTF(h.name());
    out.writeUTF(h.api().host());
    out.writeShort(h.api().port());
    out.writeByte(h.status().ordinal());
    out.writeLong(h.registeredMillis());
  }

  static HostMeta readHost(DataInputStream in) throws IOException {
    return new HostMeta(in.readUTF(), new HostPort(in.readUTF(), in.readUnsignedShort()),
        HostStatus.values()[in.readUnsignedByte()], in.readLong());
  }

  static void writeVm(DataOutputStream out, VmMeta v) throws IOException {
    out.writeUTF(v.name());
    out.writeUTF(v.host());
    out.writeUTF(v.namespace());
    out.writeLong(v.memoryBytes());
    out.writeByte(v.state().ordinal());
    out.writeUTF(v.target());
    out.writeLong(v.generation());
    out.writeLong(v.updatedMillis());
  }

  static VmMeta readVm(DataInputStream in) throws IOException {
    return new VmMeta(in.readUTF(), in.readUTF(), in.readUTF(), in.readLong(), VmState.values()[in.readUnsignedByte()],
        in.readUTF(), in.readLong(), in.readLong());
  }

  static MetaView readView(DataInputStream in) throws IOException {
    return readView(in, FORMAT);
  }

  static MetaView readView(DataInputStream in, int format) throws IOException {
    long clusterId = in.readLong();
    long version = in.readLong();
    long now = in.readLong();
    int nextId = in.readInt();
    int n = in.readInt();
    List<Member> servers = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      servers.add(readMember(in));
    }
    n = in.readInt();
    List<NamespaceMeta> namespaces = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      namespaces.add(readNamespace(in, format));
    }
    n = in.readInt();
    List<Tombstone> tombstones = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      tombstones.add(readTombstone(in));
    }
    List<HostMeta> hosts = new ArrayList<>();
    List<VmMeta> vms = new ArrayList<>();
    if (format >= 5) {
      for (int i = in.readInt(); i > 0; i--) {
        hosts.add(readHost(in));
      }
      for (int i = in.readInt(); i > 0; i--) {
        vms.add(readVm(in));
      }
    }
    return new MetaView(clusterId, version, now, nextId, servers, namespaces, tombstones, hosts, vms);
  }
}
