package io.vmd.bench.migration;

import io.vmd.bench.fault.VmdProcess;
import io.vmd.client.ClientConfig;
import io.vmd.client.VmdClient;
import io.vmd.common.HostPort;
import io.vmd.common.NbdEndpoint;
import io.vmd.common.lab.EmulatedHosts;
import io.vmd.migration.model.Bandwidth;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Four emulated hosts ({@link EmulatedHosts}), each link capped by the kernel: the source hypervisor
 * (h1), the destination (h2), and two memory hosts (h3 with the control plane, h4), as deployed: every
 * role a {@code vmd} process of its own inside its host's namespace, each hypervisor's QEMU on its
 * gateway's Unix socket. The migration stream crosses h1's and h2's links; the destination's page-ins
 * cross the memory hosts' links and h2's.
 */
final class EmulatedLabHosts implements GuestHosts {
  static final String LAB = "vmb";
  static final String SUBNET = "10.231.40";
  private static final int META_PORT = 7300;
  private static final int METRICS_PORT = 9464;
  private static final int INCOMING_PORT = 47000;

  private final EmulatedHosts lab;
  private final List<VmdProcess> processes;
  private final VmdClient orchestrator;
  private final Path dir;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final double bytesPerSecond;

  private EmulatedLabHosts(EmulatedHosts lab, List<VmdProcess> processes, VmdClient orchestrator, Path dir,
      double bytesPerSecond) {
    this.lab = lab;
    this.processes = processes;
    this.orchestrator = orchestrator;
    this.dir = dir;
    this.bytesPerSecond = bytesPerSecond;
  }

  /**
   * @param launcher how to run {@code vmd} (java, its options, -cp, the main class)
   * @param serverBytes each memory server's memory
   * @param dir where the processes' logs and the gateways' sockets go
   */
  static EmulatedLabHosts start(List<String> launcher, double bytesPerSecond, long serverBytes, Path dir)
      throws Exception {
    EmulatedHosts lab = EmulatedHosts.builder(LAB).hosts(4).subnet(SUBNET).link((long) (bytesPerSecond * 8)).up();
    List<VmdProcess> started = new ArrayList<>();
    VmdClient orchestrator = null;
    try {
      // Plaintext, as the loopback layout's in-process cluster: the links measured are the same either way.
      String meta = lab.address(3) + ":" + META_PORT;
      started.add(launch(lab, 3, "meta", launcher, dir, VmdProcess.META_READY, "meta", "--listen", meta,
          "--data-dir", dir.resolve("meta").toString()).awaitReady());
      String memory = (serverBytes >> 20) + "M";
      List<VmdProcess> servers = new ArrayList<>();
      for (int host : new int[] {3, 4}) {
        servers.add(launch(lab, host, "server-h" + host, launcher, dir, VmdProcess.SERVER_READY, "server", "--meta",
            meta, "--listen", lab.address(host) + ":0", "--memory", memory));
      }
      for (int side : new int[] {SOURCE, DESTINATION}) {
        servers.add(launch(lab, side, "gateway-h" + side, launcher, dir, VmdProcess.GATEWAY_READY, "gateway",
            "--meta", meta, "--listen", lab.address(side) + ":10809", "--unix", socket(dir, side).toString(),
            "--metrics", lab.address(side) + ":" + METRICS_PORT));
      }
      started.addAll(servers);
      for (VmdProcess p : servers) {
        p.awaitReady();
      }
      orchestrator = VmdClient.connect(ClientConfig.of(HostPort.parseList(meta)), "cli");
      VmdProcess.awaitServers(orchestrator, 2);
      return new EmulatedLabHosts(lab, started, orchestrator, dir, bytesPerSecond);
    } catch (Exception | Error e) {
      if (orchestrator != null) {
        orchestrator.close();
      }
      stop(started);
      lab.close();
      throw e;
    }
  }

  private static VmdProcess launch(EmulatedHosts lab, int host, String name, List<String> launcher, Path dir,
      Pattern ready, String... args) throws IOException {
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--insecure");
    return VmdProcess.launchIn(lab.command(host), name, launcher, List.of(), dir, ready, all.toArray(String[]::new));
  }

  private static Path socket(Path dir, int side) {
    return dir.resolve("gateway-h" + side + ".sock");
  }

  @Override
  public VmdClient orchestrator() {
    return orchestrator;
  }

  @Override
  public NbdEndpoint gateway(int side) {
    return NbdEndpoint.unix(socket(dir, side));
  }

  @Override
  public List<String> command(int side) {
    return lab.command(side);
  }

  @Override
  public HostPort incoming() {
    // Nothing else listens in the destination's namespace but its gateway.
    return new HostPort(lab.address(DESTINATION), INCOMING_PORT);
  }

  @Override
  public long pagesIn(int side, String namespace) throws Exception {
    return counter(side, "vmd_gateway_pages_in_total", namespace);
  }

  @Override
  public long pagesOut(int side, String namespace) throws Exception {
    return counter(side, "vmd_gateway_pages_out_total", namespace);
  }

  /** A counter of {@code side}'s gateway, from its Prometheus endpoint (0 before the export is opened). */
  private long counter(int side, String metric, String namespace) throws Exception {
    for (VmdProcess p : processes) {
      if (!p.alive()) {
        throw new IOException(p.name() + " died; its log:\n" + p.logTail());
      }
    }
    HttpRequest get = HttpRequest.newBuilder(URI.create("http://" + lab.address(side) + ":" + METRICS_PORT + "/metrics"))
        .timeout(Duration.ofSeconds(10)).build();
    String text = http.send(get, HttpResponse.BodyHandlers.ofString()).body();
    Matcher m = Pattern.compile("(?m)^" + metric + "\\{[^}]*namespace=\"" + Pattern.quote(namespace) + "\"[^}]*\\} (\\S+)$")
        .matcher(text);
    return m.find() ? (long) Double.parseDouble(m.group(1)) : 0;
  }

  @Override
  public String describe() {
    return String.format(Locale.ROOT, "source QEMU and its gateway on %s, destination on %s, memory servers on %s "
        + "(with the control plane) and %s; every link capped at %s by the kernel", lab.address(1), lab.address(2),
        lab.address(3), lab.address(4), Bandwidth.format(bytesPerSecond));
  }

  @Override
  public void close() throws Exception {
    orchestrator.close();
    stop(processes);
    lab.close();
  }

  /** Gateways first, the control plane last. */
  private static void stop(List<VmdProcess> processes) throws InterruptedException {
    for (int i = processes.size() - 1; i >= 0; i--) {
      processes.get(i).close();
    }
  }
}
