package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Op;
import io.vmd.server.MiniVmdCluster;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ServerConnectionTest {

  @Test
  void aReplyHandlerThatThrowsFailsItsRequestInsteadOfLeavingItWaiting() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().servers(1, 1 << 20).start();
         VmdClient client = VmdClient.connect(ClientConfig.of(c.metaAddresses()))) {
      ServerConnection conn = client.connection(c.slot(0));
      CompletableFuture<VmdException> failed = new CompletableFuture<>();
      long id = conn.nextId();
      ByteBuf frame = Codec.frame(ByteBufAllocator.DEFAULT, Op.NS_LIST, 0, 0, id, 0, 0, 0, 0, null);
      conn.send(id, frame, new Pending() {
        @Override
        void onReply(ByteBuf f) {
          throw new IllegalStateException("boom");
        }

        @Override
        void onFailure(VmdException e) {
          failed.complete(e);
        }
      });
      VmdException e = failed.get(5, TimeUnit.SECONDS);
      assertThat(e.code()).isEqualTo(ErrorCode.INTERNAL);
      assertThat(e.getMessage()).contains("boom");
      // The connection carries on.
      assertThat(client.listNamespaces()).isEmpty();
    }
  }
}
