package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmd.common.NbdEndpoint;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What a user names never escapes into QEMU's option syntax or out of the VM directory. */
class QemuVmSpecTest {
  private static QemuVm.Spec spec(String name, String namespace) {
    return new QemuVm.Spec(name, 128L << 20, namespace, NbdEndpoint.parse("127.0.0.1:10809"), Path.of("/k"),
        Path.of("/i"), "console=ttyS0", "tcg", false);
  }

  @Test
  void dotNamesAndPathCharactersAreRefused() {
    for (String bad : List.of(".", "..", "a/b", "a,b", "", "x".repeat(65))) {
      assertThatThrownBy(() -> spec(bad, "swap")).as(bad).isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("VM name");
    }
    assertThat(spec("vm-1.a_b", "swap").name()).isEqualTo("vm-1.a_b");
  }

  @Test
  void theDiskIsJsonAndPathsInOptionsHaveTheirCommasDoubled() throws Exception {
    List<String> cmd = spec("vm", "ns,driver=file,filename=/etc/shadow").commandLine(Path.of("/tmp/a,b"));
    JsonNode disk = new ObjectMapper().readTree(cmd.get(cmd.indexOf("-blockdev") + 1));
    assertThat(disk.path("driver").asText()).isEqualTo("nbd");
    assertThat(disk.path("export").asText()).isEqualTo("ns,driver=file,filename=/etc/shadow");
    assertThat(disk.path("server").path("host").asText()).isEqualTo("127.0.0.1");
    assertThat(disk.path("server").path("port").asText()).isEqualTo("10809");
    assertThat(disk.path("reconnect-delay").asInt()).as("a restarted gateway is reconnected to").isEqualTo(60);
    assertThat(cmd.get(cmd.indexOf("-qmp") + 1)).isEqualTo("unix:/tmp/a,,b/qmp.sock,server=on,wait=off");
    assertThat(cmd.get(cmd.indexOf("-serial") + 1)).isEqualTo("file:/tmp/a,,b/serial.log");
  }

  @Test
  void aUnixSocketGatewayIsAUnixServerInTheDiskAndRoundTripsAsText() throws Exception {
    NbdEndpoint local = NbdEndpoint.parse("unix:/run/vmd/nbd,x.sock");
    assertThat(NbdEndpoint.parse(local.toString())).isEqualTo(local);
    assertThat(local.uri("swap")).isEqualTo("nbd+unix:///swap?socket=/run/vmd/nbd,x.sock");
    QemuVm.Spec s = new QemuVm.Spec("vm", 128L << 20, "swap", local, Path.of("/k"), Path.of("/i"), "console=ttyS0",
        "tcg", false);
    List<String> cmd = s.commandLine(Path.of("/tmp/vm"));
    JsonNode server = new ObjectMapper().readTree(cmd.get(cmd.indexOf("-blockdev") + 1)).path("server");
    assertThat(server.path("type").asText()).isEqualTo("unix");
    assertThat(server.path("path").asText()).isEqualTo("/run/vmd/nbd,x.sock");
    assertThat(server.has("host")).isFalse();
    assertThatThrownBy(() -> NbdEndpoint.parse("unix:")).hasMessageContaining("socket's path");
  }
}
