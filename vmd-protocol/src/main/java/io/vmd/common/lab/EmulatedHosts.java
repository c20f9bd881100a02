package io.vmd.common.lab;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Hosts emulated on one machine: each a Linux network namespace with its own address on a bridge, its
 * link capped by the kernel (a token bucket, {@code tc tbf}, on both directions of its veth). Roles run
 * inside their host's namespace ({@link #command}). For tests and benchmarks of what crosses a network,
 * and as {@code vmd lab hosts up|down}, so a run can be reproduced by hand. Needs root.
 *
 * <p>Names: lab {@code L} makes namespaces {@code vmd-L-h1..hN}, a bridge {@code vmdL} and veths
 * {@code vmdL-N}; host i has address 10.231.0.i/24, the bridge 10.231.0.254 (another subnet with
 * {@link Builder#subnet}). Interface names must fit Linux's 15 characters, so a lab name is short.
 */
public final class EmulatedHosts implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EmulatedHosts.class);
  private static final long COMMAND_SECONDS = 30;

  private final String lab;
  private final String subnet;
  private final List<String> hosts;

  private EmulatedHosts(String lab, String subnet, List<String> hosts) {
    this.lab = lab;
    this.subnet = subnet;
    this.hosts = hosts;
  }

  public static Builder builder(String lab) {
    return new Builder(lab);
  }

  /** Makes the lab's hosts. */
  public static final class Builder {
    private final String lab;
    private int count = 2;
    private String subnet = "10.231.0";
    private long bitsPerSecond;

    private Builder(String lab) {
      if (!lab.matches("[a-z0-9]{1,6}")) {
        throw new IllegalArgumentException("a lab name is 1 to 6 lower-case letters or digits, not '" + lab + "'");
      }
      this.lab = lab;
    }

    /** How many hosts (1..250; default 2). */
    public Builder hosts(int n) {
      if (n < 1 || n > 250) {
        throw new IllegalArgumentException("a lab has 1 to 250 hosts, not " + n);
      }
      this.count = n;
      return this;
    }

    /** The first three octets of the hosts' /24 (default 10.231.0). */
    public Builder subnet(String firstThreeOctets) {
      if (!firstThreeOctets.matches("\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}")) {
        throw new IllegalArgumentException("a subnet is given by its first three octets, e.g. 10.231.0, not '"
            + firstThreeOctets + "'");
      }
      this.subnet = firstThreeOctets;
      return this;
    }

    /** Caps every host's link at this many bits per second each way (0, the default: uncapped). */
    public Builder link(long bitsPerSecond) {
      if (bitsPerSecond < 0) {
        throw new IllegalArgumentException("a link rate is positive");
      }
      this.bitsPerSecond = bitsPerSecond;
      return this;
    }

    /** Creates the namespaces, the bridge and the links; on any failure removes what it made. */
    public EmulatedHosts up() throws IOException {
      requireRoot();
      List<String> names = new ArrayList<>();
      for (int i = 1; i <= count; i++) {
        names.add(namespace(lab, i));
      }
      EmulatedHosts lab = new EmulatedHosts(this.lab, subnet, names);
      if (exists("ip", "link", "show", lab.bridge())) {
        throw new IOException("lab '" + this.lab + "' is up already: vmd lab hosts down --lab " + this.lab + " first");
      }
      try {
        String bridge = lab.bridge();
        run("ip", "link", "add", bridge, "type", "bridge");
        run("ip", "addr", "add", lab.bridgeAddress() + "/24", "dev", bridge);
        run("ip", "link", "set", bridge, "up");
        for (int i = 1; i <= count; i++) {
          String ns = names.get(i - 1);
          String outside = "vmd" + this.lab + "-" + i; // at most 13 characters; its peer adds "p"
          String inside = outside + "p";
          run("ip", "netns", "add", ns);
          run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside);
          run("ip", "link", "set", inside, "netns", ns);
          run("ip", "link", "set", outside, "master", bridge);
          run("ip", "link", "set", outside, "up");
          run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
          run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "name", "eth0");
          run("ip", "netns", "exec", ns, "ip", "addr", "add", subnet + "." + i + "/24", "dev", "eth0");
          run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up");
          if (bitsPerSecond > 0) {
            // Both directions: the host's sending side inside, its receiving side on the bridge's port.
            run(tbf(List.of("ip", "netns", "exec", ns), "eth0", bitsPerSecond));
            run(tbf(List.of(), outside, bitsPerSecond));
          }
        }
      } catch (IOException | RuntimeException e) {
        lab.close();
        throw e;
      }
      LOG.info("lab '{}': {} hosts on {}.0/24{}", this.lab, count, subnet,
          bitsPerSecond > 0 ? ", links capped at " + bitsPerSecond / 1_000_000 + " Mbit/s" : "");
      return lab;
    }
  }

  /** {@code tc qdisc add dev DEV root tbf}: a burst of about 1 ms of the rate (at least 32 KiB), 50 ms of queue. */
  private static List<String> tbf(List<String> prefix, String dev, long bitsPerSecond) {
    long burst = Math.max(32 << 10, bitsPerSecond / 8 / 1000);
    List<String> c = new ArrayList<>(prefix);
    c.addAll(List.of("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", bitsPerSecond + "bit",
        "burst", String.valueOf(burst), "latency", "50ms"));
    return c;
  }

  static String namespace(String lab, int i) {
    return "vmd-" + lab + "-h" + i;
  }

  private String bridge() {
    return "vmd" + lab;
  }

  /** The hosts' namespace names, h1 first. */
  public List<String> namespaces() {
    return List.copyOf(hosts);
  }

  /** Host {@code i}'s address (1-based). */
  public String address(int i) {
    checkHost(i);
    return subnet + "." + i;
  }

  /** The bridge's address: the machine itself as the hosts reach it. */
  public String bridgeAddress() {
    return subnet + ".254";
  }

  /** {@code command} as run inside host {@code i}: ip netns exec NS command... */
  public List<String> command(int i, String... command) {
    checkHost(i);
    List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", hosts.get(i - 1)));
    c.addAll(List.of(command));
    return c;
  }

  private void checkHost(int i) {
    if (i < 1 || i > hosts.size()) {
      throw new IllegalArgumentException("lab '" + lab + "' has hosts 1.." + hosts.size() + ", not " + i);
    }
  }

  /** Removes every namespace and the bridge (what is already gone is skipped). */
  @Override
  public void close() {
    down(lab, hosts.size());
  }

  /**
   * Removes lab {@code lab}'s veths, namespaces and bridge, whatever made them;
   * returns how many namespaces there were.
   */
  public static int down(String lab, int atMost) {
    int removed = 0;
    for (int i = 1; i <= atMost; i++) {
      String ns = namespace(lab, i);
      // The bridge's end of the veth: the kernel removes it with the namespace, but not at once.
      String outside = "vmd" + lab + "-" + i;
      if (exists("ip", "link", "show", outside)) {
        try {
          run("ip", "link", "del", outside);
        } catch (IOException e) {
          LOG.warn("could not remove veth {}: {}", outside, e.getMessage());
        }
      }
      if (exists("ip", "netns", "pids", ns)) {
        try {
          run("ip", "netns", "del", ns);
          removed++;
        } catch (IOException e) {
          LOG.warn("could not remove network namespace {}: {}", ns, e.getMessage());
        }
      }
    }
    if (exists("ip", "link", "show", "vmd" + lab)) {
      try {
        run("ip", "link", "del", "vmd" + lab);
      } catch (IOException e) {
        LOG.warn("could not remove bridge vmd{}: {}", lab, e.getMessage());
      }
    }
    return removed;
  }

  private static void requireRoot() throws IOException {
    if (!"root".equals(System.getProperty("user.name"))) {
      throw new IOException("emulated hosts need root: they are network namespaces, veths and a bridge (run as root)");
    }
  }

  private static boolean exists(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
      return p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static void run(String... command) throws IOException {
    run(List.of(command));
  }

  private static void run(List<String> command) throws IOException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (!p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", command) + ": no answer within " + COMMAND_SECONDS + " s");
      }
      if (p.exitValue() != 0) {
        throw new IOException(String.join(" ", command) + ": " + (out.isEmpty() ? "exit " + p.exitValue() : out));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new IOException(String.join(" ", command) + ": interrupted", e);
    }
  }
}
