package io.vmd.meta;

import io.vmd.common.HostPort;
import io.vmd.common.tls.Identity;
import io.vmd.common.tls.Role;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Pages;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The control plane's state and the rules that change it: deterministic, so that every voter that
 * applies the same log gets the same state. Time comes in with each command (the leader's clock when
 * it took the command), never from the local clock, and only moves forward.
 */
final class MetaState {
  /** Deleted namespaces remembered for display; ids are never reused whatever this keeps. */
  static final int TOMBSTONES_KEPT = 1000;

  private long clusterId;
  private long version;
  private long now;
  private int nextNamespaceId = 1;
  private int nextSlot = 1;
  private final Map<String, Member> members = new LinkedHashMap<>();
  private final TreeMap<Integer, NamespaceMeta> namespaces = new TreeMap<>();
  /** Namespace ids by name (a name never changes for an id): creates and claims find one at once. */
  private final HashMap<String, Integer> idsByName = new HashMap<>();
  private final Deque<Tombstone> tombstones = new ArrayDeque<>();
  /** Which server certificate registered each member id: only it may register that id again or report its state. */
  private final Map<String, String> registrants = new HashMap<>();
  private final Map<String, HostMeta> hosts = new LinkedHashMap<>();
  private final TreeMap<String, VmMeta> vms = new TreeMap<>();

  synchronized MetaView view() {
    List<NamespaceMeta> ns = new ArrayList<>(namespaces.values());
    return new MetaView(clusterId, version, now, nextNamespaceId, new ArrayList<>(members.values()), ns,
        new ArrayList<>(tombstones), new ArrayList<>(hosts.values()), new ArrayList<>(vms.values()));
  }

  synchronized long version() {
    return version;
  }

  /** Answers a query: the view, or "unchanged" when the asker already has this version. */
  synchronized byte[] query(byte[] q) {
    try {
      DataInputStream in = MetaCodec.in(q, 0);
      byte op = in.readByte();
      if (op == MetaCodec.VIEW) {
        long since = in.readLong();
        if (since == version) {
          return MetaCodec.ok(out -> out.writeBoolean(false));
        }
        MetaView v = view();
        return MetaCodec.ok(out -> {
          out.writeBoolean(true);
          MetaCodec.writeView(out, v);
        });
      }
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "unknown control-plane query " + op);
    } catch (IOException e) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "malformed control-plane query: " + e);
    }
  }

  // Quotas: every command is bounded whoever sends it, so no caller can grow the state (and every
  // snapshot and view) without limit or hold a namespace for long after it has gone. Constants, not
  // settings: every voter must judge a command the same way.

  /** The longest server id, owner id or host name taken. */
  static final int MAX_ID_LENGTH = 128;
  /** Namespaces that may exist at once. */
  static final int MAX_NAMESPACES = 65_536;
  /** The largest sealed namespace: 2^33 pages, so that page (33 bits) and stamp (63) fill a 96-bit nonce. */
  static final long MAX_SEALED_BYTES = (1L << 33) * Pages.PAGE_SIZE;
  /** Hypervisor hosts that may be registered at once. */
  static final int MAX_HOSTS = 4096;
  /** VMs that may be recorded at once. */
  static final int MAX_VMS = 65_536;
  /** The longest lease a claim or renewal may ask for: a dead owner blocks its namespaces at most this long. */
  static final long MAX_LEASE_MILLIS = 60_000;

  /** Why {@code id} is not an acceptable {@code what}, or null. */
  private static String badId(String what, String id) {
    if (id.isEmpty()) {
      return "empty " + what;
    }
    if (id.length() > MAX_ID_LENGTH) {
      return what + " of " + id.length() + " characters is over the " + MAX_ID_LENGTH + "-character limit";
    }
    for (int i = 0; i < id.length(); i++) {
      if (Character.isISOControl(id.charAt(i))) {
        return what + " with a control character";
      }
    }
    return null;
  }

  private static String badLease(long leaseMillis) {
    return leaseMillis <= 0 || leaseMillis > MAX_LEASE_MILLIS
        ? "a lease of " + leaseMillis + " ms is outside 1.." + MAX_LEASE_MILLIS + " ms" : null;
  }

  private static byte[] refused(String why) {
    return MetaCodec.error(ErrorCode.BAD_REQUEST, why);
  }

  /** The reply to a command its caller's role does not allow. */
  private static byte[] denied(Caller caller, String what) {
    return MetaCodec.error(ErrorCode.UNAUTHORIZED, caller + " may not " + what);
  }

  /** Applies a command as an insecure cluster does (tests of the rules themselves). */
  byte[] apply(byte[] command, long leaderMillis, long leaderRandom) {
    return apply(command, leaderMillis, leaderRandom, Caller.INSECURE);
  }

  /**
   * Applies one command taken at {@code leaderMillis} from {@code caller}; returns the reply. Never
   * throws. {@code leaderRandom} (drawn by the leader, carried in the log) names the cluster on its
   * first command. Who may do what: admin anything; a gateway claims (never by force), renews and
   * releases leases under owner ids that start with its name and '/', and changes the server sets of
   * namespaces it owns; a server registers itself at an address its certificate names, and marks
   * only itself active.
   */
  synchronized byte[] apply(byte[] command, long leaderMillis, long leaderRandom, Caller caller) {
    now = Math.max(now, leaderMillis);
    if (clusterId == 0) {
      clusterId = leaderRandom == 0 ? 1 : leaderRandom;
    }
    try {
      DataInputStream in = MetaCodec.in(command, 0);
      byte op = in.readByte();
      boolean admin = caller.role() == Role.ADMIN;
      boolean gateway = caller.role().attachesNamespaces();
      switch (op) {
        case MetaCodec.REGISTER: {
          String id = in.readUTF();
          HostPort address = new HostPort(in.readUTF(), in.readUnsignedShort());
          boolean persistent = in.readBoolean();
          if (!admin) {
            String registrant = registrants.get(id);
            if (caller.role() != Role.SERVER) {
              return denied(caller, "register a server");
            }
            if (!caller.hosts().contains(address.host())) {
              return denied(caller, "register a server at " + address.host() + ", which its certificate does not name");
            }
            if (registrant != null && !registrant.equals(caller.name())) {
              return denied(caller, "register server id " + id + ", which server '" + registrant + "' registered");
            }
          }
          return register(id, address, persistent, caller);
        }
        case MetaCodec.SET_STATUS: {
          int slot = in.readUnsignedShort();
          ServerStatus status = ServerStatus.values()[in.readUnsignedByte()];
          if (!admin) {
            Member m = bySlot(slot);
            if (caller.role() != Role.SERVER || status != ServerStatus.ACTIVE) {
              return denied(caller, "set a server " + status.name().toLowerCase(Locale.ROOT));
            }
            if (m != null && !caller.name().equals(registrants.get(m.id()))) {
              return denied(caller, "set the state of server " + m.id() + ", which it did not register");
            }
          }
          return setStatus(slot, status);
        }
        case MetaCodec.NS_CREATE:
          return admin ? create(in.readUTF(), in.readLong(), in.readUnsignedByte(), MetaCodec.readKey(in))
              : denied(caller, "create namespaces");
        case MetaCodec.GRANT: {
          String name = in.readUTF();
          String client = in.readUTF();
          boolean grant = in.readBoolean();
          return admin ? grant(name, client, grant) : denied(caller, "grant or revoke namespaces");
        }
        case MetaCodec.NS_DELETE:
          return admin ? delete(in.readUTF(), in.readBoolean()) : denied(caller, "delete namespaces");
        case MetaCodec.CLAIM: {
          String name = in.readUTF();
          String owner = in.readUTF();
          long lease = in.readLong();
          boolean force = in.readBoolean();
          long expectedEpoch = in.readLong();
          if (!admin && !(gateway && !force && caller.mayActAs(owner))) {
            return denied(caller, force ? "take a namespace by force (admin only)"
                : "claim namespace '" + name + "' as owner '" + owner + "'");
          }
          return claim(name, owner, lease, force, expectedEpoch);
        }
        case MetaCodec.RENEW: {
          String owner = in.readUTF();
          return mayOwn(caller, owner) ? renew(owner, in.readLong()) : denied(caller, "renew the leases of " + owner);
        }
        case MetaCodec.RELEASE: {
          int id = in.readInt();
          String owner = in.readUTF();
          return mayOwn(caller, owner) ? release(id, owner, in.readLong()) : denied(caller, "release a lease of " + owner);
        }
        case MetaCodec.ADD_SERVERS:
        case MetaCodec.REMOVE_SERVERS: {
          int id = in.readInt();
          String owner = in.readUTF();
          if (!mayOwn(caller, owner)) {
            return denied(caller, "change the servers of a namespace " + owner + " owns");
          }
          return changeServers(id, owner, in.readLong(), MetaCodec.readSlots(in), op == MetaCodec.ADD_SERVERS);
        }
        case MetaCodec.HOST_REGISTER: {
          String name = in.readUTF();
          HostPort api = new HostPort(in.readUTF(), in.readUnsignedShort());
          if (!admin && !(caller.role() == Role.HOST && caller.name().equals(name))) {
            return denied(caller, "register host '" + name + "'");
          }
          if (!admin && !caller.hosts().contains(api.host())) {
            return denied(caller, "register its API at " + api.host() + ", which its certificate does not name");
          }
          return registerHost(name, api);
        }
        case MetaCodec.HOST_STATUS: {
          String name = in.readUTF();
          HostStatus status = HostStatus.values()[in.readUnsignedByte()];
          if (!admin && !(caller.role() == Role.HOST && caller.name().equals(name) && status == HostStatus.ACTIVE)) {
            return denied(caller, "set host '" + name + "' " + status.name().toLowerCase(Locale.ROOT));
          }
          return setHostStatus(name, status);
        }
        case MetaCodec.VM_PUT: {
          VmMeta vm = MetaCodec.readVm(in);
          long expected = in.readLong();
          VmMeta old = vms.get(vm.name());
          // A host records what it runs: new VMs on itself, changes to VMs that it runs now, and the
          // end of a migration to itself (the VM arrived, or was lost on the way).
          if (!admin && !(caller.role() == Role.HOST
              && (old == null ? vm.host().equals(caller.name()) : old.host().equals(caller.name())
                  || old.state() == VmState.MIGRATING && old.target().equals(caller.name())
                      && vm.host().equals(caller.name())))) {
            return denied(caller, "record VM '" + vm.name() + "' on host '" + vm.host() + "'");
          }
          return putVm(vm, expected);
        }
        case MetaCodec.VM_REMOVE: {
          String name = in.readUTF();
          long expected = in.readLong();
          VmMeta old = vms.get(name);
          if (!admin && !(caller.role() == Role.HOST && old != null && old.host().equals(caller.name()))) {
            return denied(caller, "remove VM '" + name + "'");
          }
          return removeVm(name, expected);
        }
        default:
          return MetaCodec.error(ErrorCode.BAD_REQUEST, "unknown control-plane command " + op);
      }
    } catch (IOException | RuntimeException e) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "malformed control-plane command: " + e);
    }
  }

  private static boolean mayOwn(Caller caller, String owner) {
    return caller.role() == Role.ADMIN || caller.role().attachesNamespaces() && caller.mayActAs(owner);
  }

  private void changed() {
    version++;
  }

  // ---------------------------------------------------------------- membership

  private byte[] register(String id, HostPort address, boolean persistent, Caller caller) {
    String bad = badId("server id", id);
    bad = bad != null ? bad : badId("server host", address.host());
    if (bad != null) {
      return refused(bad);
    }
    Member m = members.get(id);
    if (m != null && m.status() == ServerStatus.REMOVED) {
      return MetaCodec.error(ErrorCode.EXISTS, "server id " + id + " was removed from the cluster; "
          + "start it with an empty data directory to join as a new server");
    }
    // Another server that was at this address is gone: two processes cannot listen on one address, and
    // the new one is not it (another id), so nobody serves what it held.
    for (Map.Entry<String, Member> e : members.entrySet()) {
      Member o = e.getValue();
      if (!o.id().equals(id) && o.address().equals(address) && o.status() != ServerStatus.REMOVED) {
        e.setValue(o.withStatus(ServerStatus.REMOVED));
      }
    }
    if (m == null) {
      int slot = freeSlot();
      if (slot < 0) {
        return MetaCodec.error(ErrorCode.NO_SPACE, "all " + Member.MAX_SLOT + " server slots are taken");
      }
      m = new Member(id, slot, address, ServerStatus.JOINING, persistent);
    } else {
      // A persisted server back from a restart: same slot, perhaps a new address.
      m = new Member(id, m.slot(), address, m.status() == ServerStatus.DRAINING ? ServerStatus.DRAINING
          : ServerStatus.JOINING, persistent);
    }
    members.put(id, m);
    if (caller.role() == Role.SERVER) {
      registrants.put(id, caller.name());
    }
    changed();
    Member out = m;
    return MetaCodec.ok(o -> MetaCodec.writeMember(o, out));
  }

  /** The next slot: new ones first; once all are used, one of a removed server that no namespace names. */
  private int freeSlot() {
    if (nextSlot <= Member.MAX_SLOT) {
      return nextSlot++;
    }
    BitSet busy = new BitSet(Member.MAX_SLOT + 1);
    for (Member m : members.values()) {
      if (m.status() != ServerStatus.REMOVED) {
        busy.set(m.slot());
      }
    }
    for (NamespaceMeta n : namespaces.values()) {
      for (int s : n.servers()) {
        busy.set(s);
      }
    }
    int free = busy.nextClearBit(1);
    if (free > Member.MAX_SLOT) {
      return -1;
    }
    members.values().removeIf(m -> {
      if (m.slot() == free) {
        registrants.remove(m.id());
        return true;
      }
      return false;
    });
    return free;
  }

  private Member bySlot(int slot) {
    for (Member m : members.values()) {
      if (m.slot() == slot && m.status() != ServerStatus.REMOVED) {
        return m;
      }
    }
    return null;
  }

  private byte[] setStatus(int slot, ServerStatus status) {
    Member m = bySlot(slot);
    if (m == null) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "no server with slot " + slot);
    }
    if (m.status() != status) {
      m = m.withStatus(status);
      members.put(m.id(), m);
      changed();
    }
    Member out = m;
    return MetaCodec.ok(o -> MetaCodec.writeMember(o, out));
  }

  // ---------------------------------------------------------------- namespaces

  private NamespaceMeta byName(String name) {
    Integer id = idsByName.get(name);
    return id == null ? null : namespaces.get(id);
  }

  private byte[] create(String name, long size, int replicas, byte[] wrappedKey) {
    if (!NamespaceRecord.validName(name)) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "namespace name '" + name
          + "': use 1-64 characters of letters, digits, '.', '_' or '-'");
    }
    if (size < Pages.PAGE_SIZE || size % Pages.PAGE_SIZE != 0) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "namespace size must be a positive multiple of 4096 bytes");
    }
    if (size > Pages.MAX_NAMESPACE_BYTES) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "namespace size " + size + " is over the largest, 256 TiB");
    }
    if (replicas < 1 || replicas > 8) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "replica count " + replicas + " outside 1..8");
    }
    if (byName(name) != null) {
      return MetaCodec.error(ErrorCode.EXISTS, "namespace '" + name + "' exists");
    }
    if (namespaces.size() >= MAX_NAMESPACES) {
      return MetaCodec.error(ErrorCode.NO_SPACE, "the cluster holds " + namespaces.size()
          + " namespaces, the most it takes; delete some first");
    }
    if (nextNamespaceId > NamespaceRecord.MAX_ID) {
      return MetaCodec.error(ErrorCode.NO_SPACE, "every namespace id has been used");
    }
    if (wrappedKey.length > 0 && size > MAX_SEALED_BYTES) {
      return MetaCodec.error(ErrorCode.BAD_REQUEST, "a sealed namespace holds at most 32 TiB (its page index and "
          + "stamp make each page's nonce), not " + size + " bytes");
    }
    NamespaceMeta n = new NamespaceMeta(nextNamespaceId++, name, size, replicas, 0, "", 0, new int[0], wrappedKey,
        List.of());
    namespaces.put(n.id(), n);
    idsByName.put(n.name(), n.id());
    changed();
    return MetaCodec.ok(o -> MetaCodec.writeNamespace(o, n));
  }

  /** Lets the NBD client {@code client} open the namespace through gateways that verify peers, or not. */
  private byte[] grant(String name, String client, boolean grant) {
    NamespaceMeta n = byName(name);
    if (n == null) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    if (!Identity.validName(client)) {
      return refused("client name '" + client + "': use 1-64 characters of letters, digits, '.', '_', ':' or '-'");
    }
    List<String> grants = new ArrayList<>(n.grants());
    boolean differs = grant ? !grants.contains(client) && grants.add(client) : grants.remove(client);
    if (grants.size() > NamespaceMeta.MAX_GRANTS) {
      return MetaCodec.error(ErrorCode.NO_SPACE, "namespace '" + name + "' is granted to "
          + NamespaceMeta.MAX_GRANTS + " clients, the most it takes; revoke some first");
    }
    if (differs) {
      n = n.withGrants(grants);
      namespaces.put(n.id(), n);
      changed();
    }
    NamespaceMeta out = n;
    return MetaCodec.ok(o -> MetaCodec.writeNamespace(o, out));
  }

  private byte[] delete(String name, boolean force) {
    NamespaceMeta n = byName(name);
    if (n == null) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    if (n.ownedAt(now) && !force) {
      return MetaCodec.error(ErrorCode.EXISTS, "namespace '" + name + "' is in use by " + n.owner()
          + "; stop its writer first, or delete with --force");
    }
    namespaces.remove(n.id());
    idsByName.remove(n.name());
    Tombstone t = new Tombstone(n.id(), n.name(), now);
    tombstones.addLast(t);
    while (tombstones.size() > TOMBSTONES_KEPT) {
      tombstones.removeFirst();
    }
    changed();
    return MetaCodec.ok(o -> MetaCodec.writeTombstone(o, t));
  }

  /**
   * Makes {@code owner} the namespace's writer at a new epoch when nobody holds a live lease on it,
   * to its own owner again, or always with {@code force} (an explicit hand-off). Otherwise nothing changes and the reply names
   * the current owner: the asker may read, not write. Every grant moves the epoch on, so two grants
   * never share one.
   */
  private byte[] claim(String name, String owner, long leaseMillis, boolean force, long expectedEpoch) {
    NamespaceMeta n = byName(name);
    if (n == null) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "no namespace named '" + name + "'");
    }
    String bad = badId("owner id", owner);
    bad = bad != null ? bad : badLease(leaseMillis);
    if (bad != null) {
      return refused(bad);
    }
    if (expectedEpoch >= 0 && expectedEpoch != n.epoch()) {
      return MetaCodec.error(ErrorCode.STALE_EPOCH, "namespace '" + name + "' is at epoch " + n.epoch()
          + ", not " + expectedEpoch);
    }
    if (force || !n.ownedAt(now) || n.owner().equals(owner)) {
      if (n.epoch() + 1 > Frame.MAX_STAMPED_EPOCH) {
        return MetaCodec.error(ErrorCode.BAD_REQUEST, "namespace '" + name + "' has changed hands "
            + n.epoch() + " times, the most page stamps can tell apart");
      }
      n = n.with(n.epoch() + 1, owner, now + leaseMillis, n.servers());
      namespaces.put(n.id(), n);
      changed();
    }
    NamespaceMeta out = n;
    return MetaCodec.ok(o -> {
      MetaCodec.writeNamespace(o, out);
      o.writeLong(now);
    });
  }

  private NamespaceMeta owned(int id, String owner, long epoch) {
    NamespaceMeta n = namespaces.get(id);
    return n != null && n.owner().equals(owner) && n.epoch() == epoch ? n : null;
  }

  private byte[] notOwner(int id, String owner, long epoch) {
    NamespaceMeta n = namespaces.get(id);
    if (n == null) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "namespace " + id + " was deleted");
    }
    return MetaCodec.error(ErrorCode.STALE_EPOCH, "namespace '" + n.name() + "' is owned by "
        + (n.hasOwner() ? n.owner() : "nobody") + " at epoch " + n.epoch() + ", not by " + owner + " at " + epoch);
  }

  /**
   * Extends the lease of every namespace {@code owner} holds, in one command (so renewal costs one log
   * entry per owner, not per namespace), and answers which it holds, at which epoch: one it no longer
   * holds was handed to another.
   */
  private byte[] renew(String owner, long leaseMillis) {
    String bad = badId("owner id", owner);
    bad = bad != null ? bad : badLease(leaseMillis);
    if (bad != null) {
      return refused(bad);
    }
    List<long[]> held = new ArrayList<>();
    for (Map.Entry<Integer, NamespaceMeta> e : namespaces.entrySet()) {
      NamespaceMeta n = e.getValue();
      if (n.owner().equals(owner)) {
        // Renewals do not change the version: followers of the view need not wake for them.
        e.setValue(n.with(n.epoch(), owner, Math.max(n.leaseUntilMillis(), now + leaseMillis), n.servers()));
        held.add(new long[] {n.id(), n.epoch()});
      }
    }
    return MetaCodec.ok(o -> {
      o.writeInt(held.size());
      for (long[] h : held) {
        o.writeInt((int) h[0]);
        o.writeLong(h[1]);
      }
    });
  }

  private byte[] release(int id, String owner, long epoch) {
    NamespaceMeta n = owned(id, owner, epoch);
    if (n == null) {
      return notOwner(id, owner, epoch);
    }
    n = n.with(n.epoch(), "", 0, n.servers());
    namespaces.put(id, n);
    changed();
    NamespaceMeta out = n;
    return MetaCodec.ok(o -> MetaCodec.writeNamespace(o, out));
  }

  /** The owner adds servers to (before it places pages there) or removes them from the server set. */
  private byte[] changeServers(int id, String owner, long epoch, int[] slots, boolean add) {
    NamespaceMeta n = owned(id, owner, epoch);
    if (n == null) {
      return notOwner(id, owner, epoch);
    }
    int[] cur = n.servers();
    int[] next;
    if (add) {
      for (int s : slots) {
        if (bySlot(s) == null) {
          return MetaCodec.error(ErrorCode.BAD_REQUEST, "no server with slot " + s);
        }
      }
      next = Arrays.stream(concat(cur, slots)).distinct().sorted().toArray();
    } else {
      next = Arrays.stream(cur).filter(s -> Arrays.stream(slots).noneMatch(x -> x == s)).toArray();
    }
    if (!Arrays.equals(cur, next)) {
      n = n.with(n.epoch(), n.owner(), n.leaseUntilMillis(), next);
      namespaces.put(id, n);
      changed();
    }
    NamespaceMeta out = n;
    return MetaCodec.ok(o -> MetaCodec.writeNamespace(o, out));
  }

  private static int[] concat(int[] a, int[] b) {
    int[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  // ---------------------------------------------------------------- hosts and VMs

  private byte[] registerHost(String name, HostPort api) {
    String bad = badId("host name", name);
    bad = bad != null ? bad : badId("host address", api.host());
    if (bad != null) {
      return refused(bad);
    }
    HostMeta old = hosts.get(name);
    if (old == null && hosts.size() >= MAX_HOSTS) {
      return MetaCodec.error(ErrorCode.NO_SPACE, "the cluster has its maximum of " + MAX_HOSTS + " hosts");
    }
    // A host registering again (its agent restarted) keeps a drain an operator asked for.
    HostStatus status = old != null && old.status() == HostStatus.DRAINING ? HostStatus.DRAINING : HostStatus.ACTIVE;
    HostMeta h = new HostMeta(name, api, status, now);
    hosts.put(name, h);
    changed();
    return MetaCodec.ok(out -> MetaCodec.writeHost(out, h));
  }

  private byte[] setHostStatus(String name, HostStatus status) {
    HostMeta h = hosts.get(name);
    if (h == null) {
      return MetaCodec.error(ErrorCode.NOT_FOUND, "no host '" + name + "'");
    }
    if (status == HostStatus.REMOVED) {
      for (VmMeta v : vms.values()) {
        if (v.host().equals(name) && v.state() != VmState.STOPPED && v.state() != VmState.LOST) {
          return MetaCodec.error(ErrorCode.BAD_REQUEST, "host '" + name + "' still runs VM '" + v.name()
              + "': migrate or stop it first");
        }
      }
      hosts.remove(name);
    } else {
      hosts.put(name, h.withStatus(status));
    }
    changed();
    return MetaCodec.ok(out -> out.writeByte(status.ordinal()));
  }

  private byte[] putVm(VmMeta vm, long expectedGeneration) {
    String bad = badId("VM name", vm.name());
    bad = bad != null ? bad : badId("host name", vm.host());
    if (bad != null) {
      return refused(bad);
    }
    VmMeta old = vms.get(vm.name());
    long generation = old == null ? 0 : old.generation();
    if (expectedGeneration != generation) {
      return MetaCodec.error(ErrorCode.STALE_EPOCH, "VM '" + vm.name() + "' changed (generation " + generation
          + ", not " + expectedGeneration + "): read it again");
    }
    if (old == null && vms.size() >= MAX_VMS) {
      return MetaCodec.error(ErrorCode.NO_SPACE, "the cluster has its maximum of " + MAX_VMS + " VMs");
    }
    if (!hosts.containsKey(vm.host())) {
      return MetaCodec.error(ErrorCode.NOT_FOUND, "no host '" + vm.host() + "'");
    }
    if (vm.state() == VmState.MIGRATING && !hosts.containsKey(vm.target())) {
      return MetaCodec.error(ErrorCode.NOT_FOUND, "no host '" + vm.target() + "' to migrate to");
    }
    if (!idsByName.containsKey(vm.namespace())) {
      return MetaCodec.error(ErrorCode.NO_NAMESPACE, "no namespace '" + vm.namespace() + "'");
    }
    if (old != null && !old.namespace().equals(vm.namespace())) {
      return refused("VM '" + vm.name() + "' keeps its namespace '" + old.namespace() + "'");
    }
    for (VmMeta other : vms.values()) {
      if (!other.name().equals(vm.name()) && other.namespace().equals(vm.namespace())
          && other.state() != VmState.STOPPED && other.state() != VmState.LOST) {
        return MetaCodec.error(ErrorCode.EXISTS, "namespace '" + vm.namespace() + "' is the swap of VM '"
            + other.name() + "'");
      }
    }
    VmMeta stored = new VmMeta(vm.name(), vm.host(), vm.namespace(), vm.memoryBytes(), vm.state(),
        vm.state() == VmState.MIGRATING ? vm.target() : "", generation + 1, now);
    vms.put(stored.name(), stored);
    changed();
    return MetaCodec.ok(out -> MetaCodec.writeVm(out, stored));
  }

  private byte[] removeVm(String name, long expectedGeneration) {
    VmMeta old = vms.get(name);
    if (old == null) {
      return MetaCodec.error(ErrorCode.NOT_FOUND, "no VM '" + name + "'");
    }
    if (old.generation() != expectedGeneration) {
      return MetaCodec.error(ErrorCode.STALE_EPOCH, "VM '" + name + "' changed (generation " + old.generation()
          + ", not " + expectedGeneration + "): read it again");
    }
    vms.remove(name);
    changed();
    return MetaCodec.ok(out -> { });
  }

  // ---------------------------------------------------------------- snapshot

  synchronized void write(DataOutputStream out) throws IOException {
    // snapshot format: 1 had no registrants, 2 no wrapped keys, 3 no grants, 4 no hosts or VMs
    out.writeInt(MetaCodec.FORMAT);
    out.writeInt(nextSlot);
    MetaCodec.writeView(out, view());
    out.writeInt(registrants.size());
    for (Map.Entry<String, String> e : registrants.entrySet()) {
      out.writeUTF(e.getKey());
      out.writeUTF(e.getValue());
    }
  }

  synchronized void read(DataInputStream in) throws IOException {
    int format = in.readInt();
    if (format < 1 || format > MetaCodec.FORMAT) {
      throw new IOException("unknown control-plane snapshot format " + format);
    }
    nextSlot = in.readInt();
    MetaView v = MetaCodec.readView(in, format);
    clusterId = v.clusterId();
    nextNamespaceId = v.nextNamespaceId();
    version = v.version();
    now = v.nowMillis();
    members.clear();
    for (Member m : v.servers()) {
      members.put(m.id(), m);
    }
    namespaces.clear();
    idsByName.clear();
    for (NamespaceMeta n : v.namespaces()) {
      namespaces.put(n.id(), n);
      idsByName.put(n.name(), n.id());
    }
    tombstones.clear();
    tombstones.addAll(v.tombstones());
    hosts.clear();
    for (HostMeta h : v.hosts()) {
      hosts.put(h.name(), h);
    }
    vms.clear();
    for (VmMeta m : v.vms()) {
      vms.put(m.name(), m);
    }
    registrants.clear();
    if (format >= 2) {
      for (int i = in.readInt(); i > 0; i--) {
        registrants.put(in.readUTF(), in.readUTF());
      }
    }
  }
}
