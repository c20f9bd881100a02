package io.vmd.migration.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmd.common.HostPort;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What a user names never escapes into QEMU's option syntax or out of the VM directory. */
class QemuVmSpecTest {
  private static QemuVm.Spec spec(String name, String namespace) {
    return new QemuVm.Spec(name, 128L << 20, namespace, new HostPort("127.0.0.1", 10809), Path.of("/k"),
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
    assertThat(cmd.get(cmd.indexOf("-qmp") + 1)).isEqualTo("unix:/tmp/a,,b/qmp.sock,server=on,wait=off");
    assertThat(cmd.get(cmd.indexOf("-serial") + 1)).isEqualTo("file:/tmp/a,,b/serial.log");
  }
}
