package io.vmd.meta;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.util.function.ToDoubleFunction;
import org.apache.ratis.server.RaftServer;

/**
 * What a control-plane voter exports: its place in the Raft group (leader or not, term, commit and
 * applied index, how far applying lags committing, the age of its last snapshot) and the state it
 * has applied (members by state, namespaces, leases held). Read at scrape time, from this voter's own
 * view: a follower that lags shows old counts, which is what its apply lag says.
 */
final class MetaMetrics {
  private MetaMetrics() {}

  static void register(MeterRegistry registry, MetaServer voter, MetaStateMachine stateMachine) {
    raft(registry, "vmd.meta.leader", "1 if this voter leads the group, else 0", voter,
        d -> d.getInfo().isLeader() ? 1 : 0);
    raft(registry, "vmd.meta.term", "The Raft term this voter is in", voter, d -> d.getInfo().getCurrentTerm());
    raft(registry, "vmd.meta.commit.index", "The last log index this voter knows committed", voter,
        d -> d.getRaftLog().getLastCommittedIndex());
    raft(registry, "vmd.meta.applied.index", "The last log index this voter applied", voter,
        d -> d.getInfo().getLastAppliedIndex());
    raft(registry, "vmd.meta.apply.lag", "Committed entries this voter has not applied yet", voter,
        d -> Math.max(0, d.getRaftLog().getLastCommittedIndex() - d.getInfo().getLastAppliedIndex()));
    Gauge.builder("vmd.meta.snapshot.age", stateMachine, sm -> sm.lastSnapshotMillis() < 0 ? Double.NaN
            : (System.currentTimeMillis() - sm.lastSnapshotMillis()) / 1000.0)
        .baseUnit("seconds").description("Time since this voter wrote or loaded its last snapshot (NaN: none yet)")
        .register(registry);
    for (ServerStatus s : ServerStatus.values()) {
      Gauge.builder("vmd.meta.servers", voter, v -> v.localView().servers().stream()
              .filter(m -> m.status() == s).count())
          .tag("state", s.name().toLowerCase(java.util.Locale.ROOT))
          .description("Memory servers the control plane lists, by state").register(registry);
    }
    for (HostStatus s : HostStatus.values()) {
      Gauge.builder("vmd.meta.hosts", voter, v -> v.localView().hosts().stream().filter(h -> h.status() == s).count())
          .tag("state", s.name().toLowerCase(java.util.Locale.ROOT))
          .description("Hypervisor hosts the control plane lists, by state").register(registry);
    }
    Gauge.builder("vmd.meta.namespaces", voter, v -> v.localView().namespaces().size())
        .description("Namespaces the control plane lists").register(registry);
    Gauge.builder("vmd.meta.leases", voter, v -> {
      long now = System.currentTimeMillis();
      return v.localView().namespaces().stream()
          .filter(n -> n.owner() != null && !n.owner().isEmpty() && n.leaseUntilMillis() > now).count();
    }).description("Namespaces a gateway holds an unexpired lease on").register(registry);
  }

  private static void raft(MeterRegistry registry, String name, String description, MetaServer voter,
      ToDoubleFunction<RaftServer.Division> value) {
    Gauge.builder(name, voter, v -> {
      try {
        return value.applyAsDouble(v.division());
      } catch (IOException | RuntimeException e) {
        return Double.NaN; // not started, or closing
      }
    }).description(description).register(registry);
  }
}
