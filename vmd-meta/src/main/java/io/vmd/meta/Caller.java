package io.vmd.meta;

import io.vmd.common.tls.Role;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Who sent a control-plane command, as the leader established it from the command's signature and
 * certificate: the certificate's name and role, and the hosts it is valid for (node certificates).
 * The leader writes it into the log beside the command, so every voter authorizes alike.
 */
record Caller(String name, Role role, List<String> hosts) {
  /** Every command of a cluster run with {@code --insecure}: nobody is checked, so all may do anything. */
  static final Caller INSECURE = new Caller("", Role.ADMIN, List.of());

  Caller {
    hosts = List.copyOf(hosts);
  }

  /** The owner ids a gateway may use: its certificate's name, then '/', then anything. */
  boolean mayActAs(String owner) {
    return role == Role.ADMIN || owner.startsWith(name + "/");
  }

  @Override
  public String toString() {
    return this == INSECURE || name.isEmpty() ? "an unauthenticated caller" : role.label() + " '" + name + "'";
  }

  void write(DataOutputStream out) throws IOException {
    out.writeByte(role.ordinal());
    out.writeUTF(name);
    out.writeByte(hosts.size());
    for (String h : hosts) {
      out.writeUTF(h);
    }
  }

  static Caller read(DataInputStream in) throws IOException {
    Role role = Role.values()[in.readUnsignedByte()];
    String name = in.readUTF();
    int n = in.readUnsignedByte();
    List<String> hosts = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      hosts.add(in.readUTF());
    }
    return new Caller(name, role, hosts);
  }
}
