package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The libvirt domain the README documents (ops/libvirt/vmd-guest.xml) is one libvirt accepts, checked
 * by libvirt's own virt-xml-validate against its schema, and its swap disk is the agent's NBD socket.
 */
class LibvirtDomainTest {
  private static final Path DOMAIN = Path.of("..", "ops", "libvirt", "vmd-guest.xml").toAbsolutePath().normalize();
  @TempDir Path tmp;

  private static String validate(Path xml) throws IOException, InterruptedException {
    Process p = new ProcessBuilder("virt-xml-validate", xml.toString(), "domain").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return p.exitValue() + " " + out;
  }

  @Test
  void theDocumentedDomainValidatesAndSwapsOnTheAgentsSocket() throws Exception {
    String xml = Files.readString(DOMAIN);
    assertThat(xml).contains("<source protocol='nbd' name='web-swap'>")
        .contains("<host transport='unix' socket='/run/vmd/nbd.sock'/>").contains("<memballoon model='virtio'/>")
        .contains("<memory unit='KiB'>524280</memory>");
    assertThat(validate(DOMAIN)).startsWith("0 ").contains("validates");
    // The validator can say no: the same domain with its NBD disk's transport misspelt.
    Path broken = Files.writeString(tmp.resolve("broken.xml"), xml.replace("transport='unix'", "transport='unx'"));
    assertThat(validate(broken)).doesNotStartWith("0 ");
  }
}
