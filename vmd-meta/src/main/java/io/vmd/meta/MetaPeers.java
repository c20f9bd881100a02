package io.vmd.meta;

import io.vmd.common.HostPort;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.protocol.RaftPeerId;

/**
 * Names in the Raft group, derived from what operators type: the group id from the cluster name, a
 * voter's id from its address. So a seed list of addresses, in any order, is all a client needs.
 */
public final class MetaPeers {
  private MetaPeers() {}

  public static RaftGroupId groupId(String cluster) {
    return RaftGroupId.valueOf(UUID.nameUUIDFromBytes(("vmd-meta:" + cluster).getBytes(StandardCharsets.UTF_8)));
  }

  public static RaftPeerId peerId(HostPort address) {
    return RaftPeerId.valueOf(("m_" + address.host() + "_" + address.port()).replaceAll("[^A-Za-z0-9_.-]", "_"));
  }

  public static RaftPeer peer(HostPort address) {
    return RaftPeer.newBuilder().setId(peerId(address)).setAddress(address.toString()).build();
  }

  public static RaftGroup group(String cluster, List<HostPort> voters) {
    if (voters.isEmpty()) {
      throw new IllegalArgumentException("no control-plane address given (use --meta HOST:PORT,... or VMD_META)");
    }
    List<RaftPeer> peers = new ArrayList<>();
    for (HostPort a : voters) {
      peers.add(peer(a));
    }
    return RaftGroup.valueOf(groupId(cluster), peers);
  }
}
