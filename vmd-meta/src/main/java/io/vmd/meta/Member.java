package io.vmd.meta;

import io.vmd.common.HostPort;

/**
 * A memory server as the control plane knows it.
 *
 * @param id stable id: kept in the server's data directory, or new for each life of an in-memory server
 * @param slot cluster-wide 2-byte number (1..65535) that location tables store; never given to another
 *     server while a namespace still names it
 * @param address where clients reach it
 * @param status its state
 * @param persistent whether its pages survive a restart
 */
public record Member(String id, int slot, HostPort address, ServerStatus status, boolean persistent) {
  public static final int MAX_SLOT = 65535;

  public Member withStatus(ServerStatus s) {
    return new Member(id, slot, address, s, persistent);
  }

  public Member withAddress(HostPort a) {
    return new Member(id, slot, a, status, persistent);
  }
}
