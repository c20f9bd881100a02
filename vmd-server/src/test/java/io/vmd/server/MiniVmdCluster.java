package io.vmd.server;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vmd.common.HostPort;
import io.vmd.common.tls.ClusterTls;
import io.vmd.common.tls.Role;
import io.vmd.meta.MetaServer;
import java.security.SecureRandom;
import java.util.List;

/**
 * The test kit (as Ratis's {@code MiniRaftCluster}): a {@link LocalCluster} whose servers and voters
 * tests can stop and start. Fault injection is its API: {@link #kill} stops a server abruptly (its
 * connections drop), {@link #restart} brings it back on the same port (with its pages when the server
 * is persisted; an in-memory one comes back as a new member), {@link #freeze} hangs it,
 * {@link #killMeta} and {@link #restartMeta} do the same to a voter. Published in vmd-server's
 * test-jar for every module's tests.
 *
 * <p>Secure by default, as a deployed cluster: mutual TLS under a CA of its own, and a seal key for its
 * clients ({@code KitClients} in vmd-client's test-jar makes their configuration). A test that needs the
 * plaintext path says so with the builder's {@code insecure()}.
 */
public final class MiniVmdCluster implements AutoCloseable {
  private final LocalCluster cluster;
  private final byte[] sealKey;

  private MiniVmdCluster(LocalCluster cluster) {
    this.cluster = cluster;
    this.sealKey = new byte[32];
    new SecureRandom().nextBytes(sealKey);
  }

  /** {@link LocalCluster}'s builder, with the cluster's own CA, whose {@code start()} gives a cluster with fault injection. */
  public static LocalCluster.Builder<MiniVmdCluster> builder() {
    return LocalCluster.<MiniVmdCluster>builder(MiniVmdCluster::new).privateCa();
  }

  /** Whether links are TLS (the default) rather than plaintext ({@code insecure()}). */
  public boolean secure() {
    return cluster.tls() != null;
  }

  /** A client certificate of the cluster's CA (its clients' way in when {@link #secure}). */
  public ClusterTls clientTls(String name, Role role) {
    return cluster.clientTls(name, role);
  }

  /** The seal key the kit's clients seal pages under (a copy). */
  public byte[] sealKey() {
    return sealKey.clone();
  }

  public String clusterName() {
    return cluster.clusterName();
  }

  /** The cluster as {@code vmd up} runs it (for code that takes one). */
  public LocalCluster local() {
    return cluster;
  }

  public int size() {
    return cluster.servers().size();
  }

  /** The server at {@code i}, or null while it is killed. */
  public VmdServer server(int i) {
    return cluster.servers().get(i);
  }

  /** Server {@code i}'s registry (the shared one, when the cluster was built with one). */
  public PrometheusMeterRegistry registry(int i) {
    return cluster.registry(i);
  }

  public HostPort address(int i) {
    return cluster.serverConfig(i).listen();
  }

  public List<HostPort> addresses() {
    return cluster.addresses();
  }

  /** The control plane's voters: what clients are given. */
  public List<HostPort> metaAddresses() {
    return cluster.metaAddresses();
  }

  /** The voters as the {@code --meta} flag takes them. */
  public String metaFlag() {
    return cluster.metaFlag();
  }

  /** Voter {@code i}, or null while it is killed. */
  public MetaServer meta(int i) {
    return cluster.metas().get(i);
  }

  /** Stops voter {@code i} abruptly. */
  public synchronized void killMeta(int i) {
    MetaServer m = cluster.metas().set(i, null);
    if (m != null) {
      m.close();
    }
  }

  /** Starts voter {@code i} again from its log and snapshot. */
  public synchronized void restartMeta(int i) {
    killMeta(i);
    cluster.metas().set(i, MetaServer.start(cluster.metaConfig(i)));
  }

  /** Server {@code i}'s slot in the control plane (what location tables store). */
  public int slot(int i) {
    return server(i).member().slot();
  }

  /** Starts one more server like the first, joining while the cluster runs; returns its index. */
  public int addServer(long memoryBytes) throws InterruptedException {
    return cluster.addServer(memoryBytes);
  }

  /** Stops server {@code i} at once: connections drop, an in-memory store loses its pages. */
  public synchronized void kill(int i) {
    VmdServer s = cluster.servers().set(i, null);
    if (s != null) {
      s.close();
    }
  }

  /** Server {@code i} stops answering and reporting but keeps its connections (a hung host). */
  public synchronized void freeze(int i) {
    server(i).freeze(true);
  }

  public synchronized void thaw(int i) {
    server(i).freeze(false);
  }

  /** Starts server {@code i} again on the same address and store settings. */
  public synchronized void restart(int i) throws InterruptedException {
    kill(i);
    cluster.servers().set(i, VmdServer.start(cluster.serverConfig(i), cluster.meterRegistryFor(i)));
  }

  @Override
  public void close() {
    cluster.close();
  }
}
