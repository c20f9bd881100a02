package io.vmd.bench.migration;

import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import java.util.List;

/**
 * Where the bench's two QEMUs run, the gateways they swap through, and the cluster behind those. Side 1
 * is the source host, side 2 the destination.
 */
interface GuestHosts extends AutoCloseable {
  int SOURCE = 1;
  int DESTINATION = 2;

  /** A client of the control plane that creates, fences and deletes the runs' namespaces. */
  VmdClient orchestrator();

  /** Where a QEMU on {@code side} reaches its host's gateway. */
  NbdEndpoint gateway(int side);

  /** What runs a command on {@code side}'s host (empty: this machine). */
  List<String> command(int side);

  /** An address and port the destination QEMU can listen on for the incoming migration. */
  HostPort incoming();

  /** Pages {@code side}'s gateway has read for {@code namespace} (page-ins) so far. */
  long pagesIn(int side, String namespace) throws Exception;

  /** Pages {@code side}'s gateway has written for {@code namespace} (page-outs) so far. */
  long pagesOut(int side, String namespace) throws Exception;

  /** One line on where everything runs. */
  String describe();
}
