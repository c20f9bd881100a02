package io.vmd.common.lab;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Two emulated hosts reach each other across the bridge, no faster than their capped links. */
class EmulatedHostsTest {
  private static final long MBIT = 1_000_000;

  private static String run(List<String> command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("%s did not end", command).isTrue();
    assertThat(p.exitValue()).as("%s: %s", command, out).isZero();
    return out;
  }

  @Test
  void hostsReachEachOtherAtTheCappedRateAndLeaveNothingBehind() throws Exception {
    try (EmulatedHosts lab = EmulatedHosts.builder("t1").hosts(2).subnet("10.231.7").link(100 * MBIT).up()) {
      assertThat(lab.address(2)).isEqualTo("10.231.7.2");
      assertThat(lab.bridgeAddress()).isEqualTo("10.231.7.254");
      // A second lab of the same name is refused while this one is up.
      assertThatThrownBy(() -> EmulatedHosts.builder("t1").hosts(1).up()).isInstanceOf(IOException.class)
          .hasMessageContaining("is up already");
      // 8 MB from h1 to h2: at 100 Mbit/s no less than 0.64 s (the bucket's burst aside).
      String receiver = "import socket,time\n"
          + "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7999));"
          + " s.listen(1); s.settimeout(30); c,_=s.accept(); n=0; t=None\n"
          + "while True:\n"
          + "  b=c.recv(1<<16)\n"
          + "  if not b: break\n"
          + "  t=t or time.time(); n+=len(b)\n"
          + "print(n, time.time()-t)\n";
      Process server = new ProcessBuilder(lab.command(2, "python3", "-c", receiver)).redirectErrorStream(true).start();
      try {
        String sender = "import socket,time\n"
            + "for i in range(100):\n"
            + "  try:\n"
            + "    s=socket.create_connection(('" + lab.address(2) + "', 7999), timeout=5); break\n"
            + "  except OSError: time.sleep(0.1)\n"
            + "s.sendall(b'x' * (8 << 20)); s.close()\n";
        run(lab.command(1, "python3", "-c", sender));
        String out = new String(server.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(server.waitFor(30, TimeUnit.SECONDS)).isTrue();
        String[] nAndSeconds = out.split("\\s+");
        assertThat(Long.parseLong(nAndSeconds[0])).isEqualTo(8 << 20);
        double seconds = Double.parseDouble(nAndSeconds[1]);
        double mbits = (8 << 20) * 8 / seconds / MBIT;
        System.out.printf("8 MiB across a 100 Mbit/s emulated link: %.2f s, %.0f Mbit/s%n", seconds, mbits);
        assertThat(mbits).as("the kernel caps the link").isBetween(50.0, 110.0);
      } finally {
        server.destroyForcibly();
      }
    }
    assertThat(run(List.of("ip", "netns", "list"))).doesNotContain("vmd-t1-");
    assertThat(run(List.of("ip", "link", "show"))).doesNotContain("vmdt1");
  }

  @Test
  void badNamesAndCountsAreRefusedBeforeAnythingIsMade() {
    assertThatThrownBy(() -> EmulatedHosts.builder("Bad-Name")).hasMessageContaining("lab name");
    assertThatThrownBy(() -> EmulatedHosts.builder("ok").hosts(0)).hasMessageContaining("1 to 250");
    assertThatThrownBy(() -> EmulatedHosts.builder("ok").subnet("10.1")).hasMessageContaining("three octets");
  }
}
