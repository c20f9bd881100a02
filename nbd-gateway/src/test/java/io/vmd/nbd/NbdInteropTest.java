package io.vmd.nbd;

import static io.vmd.nbd.GatewayFixture.ok;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmd.client.Namespace;
import io.vmd.protocol.NamespaceRecord;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The gateway against NBD clients nobody here wrote: libnbd's nbdinfo and nbdcopy, QEMU's qemu-img and
 * qemu-io, and fio's nbd engine. Each test uses a namespace of its own.
 */
class NbdInteropTest {
  private static final long MIB = 1 << 20;
  private static GatewayFixture fx;
  @TempDir Path dir;

  @BeforeAll
  static void start() throws Exception {
    fx = new GatewayFixture(2, 512 * MIB);
  }

  @AfterAll
  static void stop() {
    fx.close();
  }

  private static NamespaceRecord namespace(String name, long size) throws Exception {
    return fx.client.namespaces().create(name, size, 1).record();
  }

  private Path randomFile(String name, long seed, int bytes) throws Exception {
    byte[] b = new byte[bytes];
    new Random(seed).nextBytes(b);
    return Files.write(dir.resolve(name), b);
  }

  /**
   * A second gateway on a Unix socket only, as a hypervisor host serves its QEMUs: libnbd and QEMU
   * reach it as nbd+unix, the socket is 0600, a stale socket left behind is replaced, a live one or a
   * file that is no socket is not, and closing removes it.
   */
  @Test
  void aGatewayOnAUnixSocketServesNbdUnixClientsAndOnlyItsOwner() throws Exception {
    namespace("unix", 8 * MIB);
    Path socket = dir.resolve("run/nbd.sock");
    Files.createDirectories(socket.getParent());
    // A socket file whose process is gone: bound and abandoned without removal.
    try (ServerSocketChannel stale = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      stale.bind(UnixDomainSocketAddress.of(socket));
    }
    assertThat(socket).exists();
    GatewayConfig onSocket = new GatewayConfig(null, null).withUnixSocket(socket);
    try (NbdGateway local = NbdGateway.start(onSocket, fx.client, new SimpleMeterRegistry())) {
      assertThat(local.address()).isNull();
      assertThat(Files.getPosixFilePermissions(socket)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(dir.resolve("run")).isDirectoryContaining(p -> p.equals(socket))
          .isDirectoryNotContaining(p -> p.getFileName().toString().startsWith(".vmd-nbd-"));
      String uri = "nbd+unix:///unix?socket=" + socket;
      ok(dir, "qemu-io", "-f", "raw", uri, "-c", "write -P 0x3c 4096 1M");
      assertThat(ok(dir, "qemu-io", "-f", "raw", uri, "-c", "read -P 0x3c 4096 1M").out()).contains("read 1048576/1048576");
      assertThat(ok(dir, "nbdinfo", "--size", uri).out().strip()).isEqualTo(String.valueOf(8 * MIB));
      // The socket is in use: a second gateway on it is refused, and the first keeps serving.
      assertThatThrownBy(() -> NbdGateway.start(onSocket, fx.client, new SimpleMeterRegistry()))
          .hasMessageContaining("another process serves on " + socket);
      assertThat(ok(dir, "nbdinfo", "--size", uri).out().strip()).isEqualTo(String.valueOf(8 * MIB));
    }
    assertThat(socket).doesNotExist();
    Files.writeString(socket, "not a socket");
    assertThatThrownBy(() -> NbdGateway.start(onSocket, fx.client, new SimpleMeterRegistry()))
        .hasMessageContaining("is not a socket");
    assertThat(socket).hasContent("not a socket");
  }

  @Test
  void nbdinfoShowsSizeAndFlagsAndListsEveryNamespace() throws Exception {
    namespace("info1", 96 * MIB);
    namespace("info2", 8 * MIB);
    String json = ok(dir, "nbdinfo", "--json", fx.uri("info1")).out();
    assertThat(json.replaceAll("\\s", ""))
        .contains("\"export-size\":100663296")
        .contains("\"can_multi_conn\":true")
        .contains("\"can_trim\":true")
        .contains("\"can_flush\":true")
        .contains("\"can_fua\":true")
        .contains("\"can_zero\":true")
        .contains("\"can_cache\":true")
        .contains("\"is_read_only\":false")
        .contains("\"block_size_minimum\":1")
        .contains("\"block_size_preferred\":4096")
        .contains("\"block_size_maximum\":33554432")
        .contains("base:allocation");
    String list = ok(dir, "nbdinfo", "--list", "nbd://" + fx.gateway.address()).out();
    assertThat(list).contains("export=\"info1\"").contains("export=\"info2\"").contains("VMD namespace info2");
    GatewayFixture.Result unknown = GatewayFixture.run(dir, "nbdinfo", fx.uri("no-such-namespace"));
    assertThat(unknown.exit()).isNotZero();
    // libnbd reports NBD_REP_ERR_UNKNOWN as ENOENT.
    assertThat(unknown.err()).contains("No such file or directory").contains("no-such-namespace");
  }

  @Test
  void nbdcopyWrites64MiBOfRandomDataAndReadsItBackByteExact() throws Exception {
    namespace("copy", 128 * MIB);
    Path in = randomFile("in.img", 64, 64 * (int) MIB);
    ok(dir, "nbdcopy", in.toString(), fx.uri("copy"));
    Path back = dir.resolve("back.img");
    ok(dir, "nbdcopy", fx.uri("copy"), back.toString());
    byte[] got = Files.readAllBytes(back);
    assertThat(got).hasSize(128 * (int) MIB);
    assertThat(Arrays.equals(got, 0, 64 * (int) MIB, Files.readAllBytes(in), 0, 64 * (int) MIB)).isTrue();
    assertThat(Arrays.equals(got, 64 * (int) MIB, got.length, new byte[64 * (int) MIB], 0, 64 * (int) MIB)).isTrue();
  }

  @Test
  void qemuImgConvertThenCompare() throws Exception {
    namespace("qemu", 32 * MIB);
    Path src = randomFile("src.img", 7, 32 * (int) MIB);
    ok(dir, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(), fx.uri("qemu"));
    String cmp = ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "raw", src.toString(), fx.uri("qemu")).out();
    assertThat(cmp).contains("Images are identical");
  }

  @Test
  void qemuIoWritesOf512BytesAndAtOddOffsetsReadBackExactly() throws Exception {
    NamespaceRecord ns = namespace("io", 16 * MIB);
    String out = ok(dir, "qemu-io", "-f", "raw", fx.uri("io"),
        "-c", "write -P 0xab 1000 512",
        "-c", "write -P 0xcd 4095 3",
        "-c", "write -P 0x11 8191 9000",
        "-c", "write -P 0x22 1048576 512",
        "-c", "write -P 0x33 1049088 512",
        "-c", "read -P 0xab 1000 512",
        "-c", "read -P 0xcd 4095 3",
        "-c", "read -P 0x11 8191 9000",
        "-c", "read -P 0x22 1048576 512",
        "-c", "read -P 0x33 1049088 512",
        "-c", "read -P 0 0 1000",
        "-c", "read -P 0 1512 2583").out();
    assertThat(out).doesNotContain("failed").doesNotContain("error");
    assertThat(out.split("ops;", -1)).hasSize(13);
    // The same bytes through the client library, on a second attachment: nothing around them moved.
    Namespace view = fx.client.attach("io", false);
    byte[] pages = view.readSync(0, 5);
    byte[] want = new byte[5 * 4096];
    Arrays.fill(want, 1000, 1512, (byte) 0xab);
    Arrays.fill(want, 4095, 4098, (byte) 0xcd);
    Arrays.fill(want, 8191, 8191 + 9000, (byte) 0x11);
    assertThat(pages).isEqualTo(want);
    assertThat(ns.id()).isPositive();
  }

  @Test
  void fioRandomWritesAtDepth16VerifyWithCrc32c() throws Exception {
    namespace("fio", 64 * MIB);
    String json = ok(dir, "fio", "--name=verify", "--ioengine=nbd", "--uri=" + fx.uri("fio"), "--rw=randwrite",
        "--bs=4k", "--iodepth=16", "--size=32M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
        "--output-format=json").out();
    String flat = json.replaceAll("\\s", "");
    assertThat(flat).contains("\"error\":0");
    // 32 MiB written and all of it read back for verification.
    assertThat(flat).contains("\"io_kbytes\":32768");
  }

  @Test
  void trimGivesPagesBackAndASecondConnectionSeesTheFirstOnesWrites() throws Exception {
    NamespaceRecord ns = namespace("trim", 32 * MIB);
    ok(dir, "qemu-io", "-f", "raw", fx.uri("trim"), "-c", "write -P 0x5a 0 16M");
    assertThat(fx.storedPages(ns.id())).isEqualTo(4096);
    // Another process, another connection: it reads what the first one wrote.
    String read = ok(dir, "qemu-io", "-f", "raw", fx.uri("trim"), "-c", "read -P 0x5a 0 16M").out();
    assertThat(read).doesNotContain("failed");
    ok(dir, "qemu-io", "-f", "raw", fx.uri("trim"), "-c", "discard 4M 8M");
    assertThat(fx.storedPages(ns.id())).isEqualTo(2048);
    assertThat(fx.client.namespaces().usage("trim").stream().mapToLong(u -> u.pages()).sum()).isEqualTo(2048);
    String after = ok(dir, "qemu-io", "-f", "raw", fx.uri("trim"),
        "-c", "read -P 0 4M 8M", "-c", "read -P 0x5a 0 4M", "-c", "read -P 0x5a 12M 4M").out();
    assertThat(after).doesNotContain("failed");
    // WRITE_ZEROES of whole pages also gives memory back.
    ok(dir, "qemu-io", "-f", "raw", fx.uri("trim"), "-c", "write -z -u 0 4M");
    assertThat(fx.storedPages(ns.id())).isEqualTo(1024);
  }

  @Test
  void nbdinfoMapShowsWhichRangesHoldData() throws Exception {
    namespace("map", 16 * MIB);
    ok(dir, "qemu-io", "-f", "raw", fx.uri("map"), "-c", "write -P 1 0 1M", "-c", "write -P 2 4M 2M");
    String map = ok(dir, "nbdinfo", "--map", fx.uri("map")).out();
    assertThat(GatewayFixture.lines(map)).containsExactly(
        "0 1048576 0 data",
        "1048576 3145728 3 hole,zero",
        "4194304 2097152 0 data",
        "6291456 10485760 3 hole,zero");
  }
}
