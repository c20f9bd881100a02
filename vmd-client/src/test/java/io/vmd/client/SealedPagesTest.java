package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import io.vmd.server.MiniVmdCluster;
import io.vmd.server.store.PageStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pages sealed before they leave the client: servers hold only ciphertext, and a server that flips a
 * byte, returns another page's bytes or an older copy gets its copy refused. The reader takes the
 * good replica, or fails; it never passes the bad bytes on, and never reads zeros instead.
 */
class SealedPagesTest {
  private static final long MIB = 1 << 20;
  @TempDir Path tmp;
  private final Random random = new Random(23);

  private byte[] sealKey() {
    byte[] k = new byte[32];
    random.nextBytes(k);
    return k;
  }

  private byte[] pages(int n) {
    byte[] b = new byte[n * Pages.PAGE_SIZE];
    random.nextBytes(b);
    return b;
  }

  /** The stored copy of a page on server {@code i}: its sealed record and stamp. */
  private static Copy copy(MiniVmdCluster c, int i, int ns, long page) {
    ByteBuf b = Unpooled.buffer();
    long stamp = c.server(i).store().read(ns, page, b, true);
    byte[] rec = new byte[b.readableBytes()];
    b.readBytes(rec);
    return new Copy(rec, stamp);
  }

  private static void put(MiniVmdCluster c, int i, int ns, long page, Copy copy) {
    assertThat(c.server(i).store().write(ns, page, 1, Unpooled.wrappedBuffer(copy.record), copy.stamp, true)).isTrue();
  }

  record Copy(byte[] record, long stamp) {
    Copy flipped(int at) {
      byte[] r = record.clone();
      r[at] ^= 0x40;
      return new Copy(r, stamp);
    }
  }

  @Test
  void serversHoldOnlyCiphertextAndEveryBadCopyIsRefused() throws Exception {
    try (MiniVmdCluster cluster = MiniVmdCluster.builder().servers(2, 16 * MIB).start();
        VmdClient client = VmdClient.connect(KitClients.config(cluster).withSealKey(sealKey()))) {
      assertThat(client.namespaces().create("sealed", 4 * MIB, 2).sealed()).isTrue();
      Namespace ns = client.attach("sealed", VmdClient.Access.CLAIM);
      int id = ns.record().id();
      byte[] v1 = pages(8);
      ns.writeSync(0, v1);
      Copy old = copy(cluster, 0, id, 5);
      byte[] v2 = pages(8);
      ns.writeSync(0, v2);
      assertThat(ns.readSync(0, 8)).isEqualTo(v2);
      byte[] page5 = Arrays.copyOfRange(v2, 5 * Pages.PAGE_SIZE, 6 * Pages.PAGE_SIZE);
      for (int s = 0; s < 2; s++) {
        Copy c = copy(cluster, s, id, 5);
        assertThat(c.record).hasSize(Pages.PAGE_SIZE + PageStore.TAG_SIZE);
        assertThat(TestBytes.indexOf(c.record, Arrays.copyOfRange(page5, 100, 164))).as("plaintext on server %d", s).isNegative();
      }
      Copy good0 = copy(cluster, 0, id, 5);
      Copy good1 = copy(cluster, 1, id, 5);
      Copy other = copy(cluster, 0, id, 6);
      Copy[][] attacks = {
          {good0.flipped(17), good1.flipped(17)},                    // a flipped byte of the page
          {good0.flipped(Pages.PAGE_SIZE + 3), good1.flipped(Pages.PAGE_SIZE + 3)}, // of the tag
          {other, other},                                            // another page's bytes (and stamp)
          {new Copy(good0.record, good0.stamp + 1), new Copy(good1.record, good1.stamp + 1)}, // relabelled
          {old, old}};                                               // an older copy under its own seal
      long failuresBefore = client.sealFailureCount();
      for (Copy[] attack : attacks) {
        // One server lies: the other replica's copy is read.
        put(cluster, 0, id, 5, attack[0]);
        assertThat(ns.readSync(5, 1)).isEqualTo(page5);
        put(cluster, 1, id, 5, attack[1]);
        put(cluster, 0, id, 5, good0);
        assertThat(ns.readSync(5, 1)).isEqualTo(page5);
        // Both lie: the read fails, it returns neither their bytes nor zeros.
        put(cluster, 0, id, 5, attack[0]);
        assertThatThrownBy(() -> ns.readSync(5, 1)).isInstanceOfSatisfying(VmdException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE));
        put(cluster, 0, id, 5, good0);
        put(cluster, 1, id, 5, good1);
        assertThat(ns.readSync(0, 8)).isEqualTo(v2);
      }
      assertThat(client.sealFailureCount() - failuresBefore).isGreaterThanOrEqualTo(3L * attacks.length);
    }
  }

  @Test
  void withoutTheSealKeyASealedNamespaceDoesNotOpen() throws Exception {
    try (MiniVmdCluster cluster = MiniVmdCluster.builder().servers(1, 16 * MIB).start();
        VmdClient admin = VmdClient.connect(KitClients.config(cluster).withSealKey(sealKey()));
        VmdClient keyless = VmdClient.connect(KitClients.config(cluster).withSealKey(null));
        VmdClient otherKey = VmdClient.connect(KitClients.config(cluster).withSealKey(sealKey()))) {
      admin.namespaces().create("locked", MIB, 1);
      for (VmdClient c : new VmdClient[] {keyless, otherKey}) {
        assertThatThrownBy(() -> c.attach("locked", VmdClient.Access.CLAIM)).isInstanceOfSatisfying(
            VmdException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAUTHORIZED));
      }
      // The refused attach gave its claim back: the key holder claims at once.
      assertThat(admin.attach("locked", VmdClient.Access.CLAIM).writable()).isTrue();
    }
  }

  @Test
  void aPersistedStoreFileHoldsNoPlaintextOfASealedPage() throws Exception {
    byte[] data = pages(16);
    // The control: unsealed, the same search finds the page in the file, so the check can fail.
    assertThat(plaintextOnDisk(null, data, tmp.resolve("plain"))).isTrue();
    assertThat(plaintextOnDisk(sealKey(), data, tmp.resolve("sealed"))).isFalse();
  }

  private boolean plaintextOnDisk(byte[] sealKey, byte[] data, Path root) throws Exception {
    try (MiniVmdCluster cluster = MiniVmdCluster.builder().servers(1, 16 * MIB).store("chronicle").persisted(root)
        .start();
        VmdClient c = VmdClient.connect(KitClients.config(cluster).withSealKey(sealKey))) {
      c.namespaces().create("disk", 4 * MIB, 1);
      c.attach("disk", VmdClient.Access.CLAIM).writeSync(3, data);
    }
    byte[] needle = Arrays.copyOfRange(data, 7 * Pages.PAGE_SIZE + 500, 7 * Pages.PAGE_SIZE + 564);
    try (Stream<Path> files = Files.walk(root)) {
      return files.filter(Files::isRegularFile).anyMatch(f -> {
        try {
          return TestBytes.indexOf(Files.readAllBytes(f), needle) >= 0;
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    }
  }
}
