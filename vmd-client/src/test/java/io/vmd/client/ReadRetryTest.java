package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Pages;
import io.vmd.server.MiniVmdCluster;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ReadRetryTest {
  /**
   * Three copies, the first two of which their servers lost (up, answering, but without the page): the
   * read asks the first, then the second, then the third — each once — and gets the page.
   */
  @Test
  void aReadAsksEveryReplicaOnceBeforeItGivesUp() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(3, 16 << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c))) {
      client.namespaces().create("r3", 1 << 20, 3);
      Namespace ns = client.attach("r3", true);
      byte[] page = new byte[4096];
      new Random(9).nextBytes(page);
      ns.writeSync(5, page);
      int id = ns.record().id();
      for (int r = 0; r < 2; r++) {
        int slot = ns.locations.get(5, r);
        for (int i = 0; i < c.size(); i++) {
          if (c.slot(i) == slot) {
            assertThat(c.server(i).store().delete(id, 5, 1)).isEqualTo(1);
          }
        }
      }
      assertThat(ns.readSync(5, 1)).isEqualTo(page);
      // With the third gone too, the read fails: an error, never zeros.
      int last = ns.locations.get(5, 2);
      for (int i = 0; i < c.size(); i++) {
        if (c.slot(i) == last) {
          c.server(i).store().delete(id, 5, 1);
        }
      }
      assertThatThrownBy(() -> ns.readSync(5, 1)).isInstanceOf(VmdException.class)
          .hasMessageContaining("missing");
    }
  }

  /**
   * With two copies of every page, reads take turns between them by block of placement runs: both
   * servers serve half of a large read (each page always from the same one), and the bytes are right.
   */
  @Test
  void readsOfAReplicatedNamespaceUseEveryCopy() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(2, 16 << 20).start();
         VmdClient client = VmdClient.connect(KitClients.config(c))) {
      client.namespaces().create("r2", 4 << 20, 2);
      Namespace ns = client.attach("r2", true);
      int pages = 8 * Namespace.PLACEMENT_RUN;
      byte[] data = new byte[pages * 4096];
      new Random(11).nextBytes(data);
      ns.writeSync(0, data);
      assertThat(ns.readSync(0, pages)).isEqualTo(data);
      double[] served = new double[2];
      for (int i = 0; i < 2; i++) {
        served[i] = c.registry(i).get("vmd.server.pages.read").counter().count();
      }
      assertThat(served[0] + served[1]).isEqualTo(pages);
      assertThat(served[0]).isEqualTo(pages / 2.0);
      // Each page from the same copy every time: a second read moves the counts by the same halves.
      assertThat(ns.readSync(0, pages)).isEqualTo(data);
      assertThat(c.registry(0).get("vmd.server.pages.read").counter().count()).isEqualTo(pages);
    }
  }

  @Test
  void aNamespaceLargerThanPageIndicesCanAddressIsRefusedAtCreate() throws Exception {
    // Unsealed, the page index's own bound; sealed, 32 TiB (index and stamp make each page's nonce).
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 1 << 20).start();
         VmdClient sealed = VmdClient.connect(KitClients.config(c));
         VmdClient client = VmdClient.connect(KitClients.config(c).withSealKey(null))) {
      assertThatThrownBy(() -> sealed.namespaces().create("huge-sealed", 64L << 40, 1))
          .isInstanceOf(VmdException.class).hasMessageContaining("32 TiB");
      assertThatThrownBy(() -> client.namespaces().create("huge", 1L << 50, 1)).isInstanceOf(VmdException.class)
          .satisfies(e -> assertThat(((VmdException) e).code()).isEqualTo(ErrorCode.BAD_REQUEST))
          .hasMessageContaining("256 TiB");
      assertThat(client.namespaces().create("largest", Pages.MAX_NAMESPACE_BYTES, 1).sizeBytes())
          .isEqualTo(Pages.MAX_NAMESPACE_BYTES);
    }
  }
}
