package io.vmd.common;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which inherited descriptors socket activation hands over, read from a /proc made here. */
class SocketActivationTest {
  @TempDir Path proc;

  @Test
  void listenersAreTheDescriptorsFromThreeAndUnixOnesAreThoseInNetUnix() throws IOException {
    fakeProc("socket:[111]", "socket:[222]");
    Files.writeString(proc.resolve("net/unix"), "Num       RefCount Protocol Flags    Type St Inode Path\n"
        + "0000000000000000: 00000002 00000000 00010000 0001 01 222 /run/vmd/nbd.sock\n");
    assertThat(SocketActivation.inherited(Map.of("LISTEN_PID", "42", "LISTEN_FDS", "2"), 42, proc))
        .containsExactly(new SocketActivation.Listener(3, false, null),
            new SocketActivation.Listener(4, true, Path.of("/run/vmd/nbd.sock")));
  }

  @Test
  void variablesMeantForAnotherProcessOrAbsentMeanNone() throws IOException {
    fakeProc("socket:[111]");
    Files.writeString(proc.resolve("net/unix"), "Num RefCount Protocol Flags Type St Inode Path\n");
    assertThat(SocketActivation.inherited(Map.of("LISTEN_PID", "41", "LISTEN_FDS", "1"), 42, proc)).isEmpty();
    assertThat(SocketActivation.inherited(Map.of(), 42, proc)).isEmpty();
  }

  @Test
  void aDescriptorThatIsNotASocketIsAnError() throws IOException {
    fakeProc("/dev/null");
    Files.writeString(proc.resolve("net/unix"), "Num RefCount Protocol Flags Type St Inode Path\n");
    assertThatThrownBy(() -> SocketActivation.inherited(Map.of("LISTEN_PID", "42", "LISTEN_FDS", "1"), 42, proc))
        .hasMessageContaining("descriptor 3 is not a socket");
  }

  private void fakeProc(String... targets) throws IOException {
    Files.createDirectories(proc.resolve("self/fd"));
    Files.createDirectories(proc.resolve("net"));
    for (int i = 0; i < targets.length; i++) {
      Files.createSymbolicLink(proc.resolve("self/fd/" + (3 + i)), Path.of(targets[i]));
    }
  }
}
