package io.vmd.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.common.ClusterKey;
import io.vmd.protocol.Codec;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import io.vmd.server.MiniVmdCluster;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** A keyed plaintext cluster (--insecure with a cluster key): only peers holding the key take part, both ways. */
class ClusterKeyTest {
  private static final ClusterKey KEY = ClusterKey.of("correct horse battery staple".getBytes(StandardCharsets.UTF_8));
  private static final ClusterKey OTHER = ClusterKey.of("an entirely different secret".getBytes(StandardCharsets.UTF_8));

  @Test
  void aClientWithTheKeyReadsAndWritesOnesWithoutOrWithAnotherAreRefused() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().insecure().servers(2, 8L << 20).clusterKey(KEY).start()) {
      try (VmdClient ok = VmdClient.connect(ClientConfig.of(c.metaAddresses()).withClusterKey(KEY))) {
        ok.namespaces().create("k", 1 << 20, 2);
        Namespace ns = ok.attach("k", true);
        byte[] page = new byte[Pages.PAGE_SIZE];
        page[7] = 42;
        ns.writeSync(3, page);
        assertThat(ns.readSync(3, 1)).isEqualTo(page);
      }
      assertThatThrownBy(() -> VmdClient.connect(ClientConfig.of(c.metaAddresses())))
          .isInstanceOf(VmdException.class).hasMessageContaining("cluster key")
          .satisfies(e -> assertThat(((VmdException) e).code()).isEqualTo(ErrorCode.UNAUTHORIZED));
      assertThatThrownBy(() -> VmdClient.connect(ClientConfig.of(c.metaAddresses()).withClusterKey(OTHER)))
          .isInstanceOf(VmdException.class).hasMessageContaining("cluster key");
    }
  }

  @Test
  void aClientWithTheKeyRefusesAServerThatCannotProveIt() throws Exception {
    try (MiniVmdCluster unkeyed = MiniVmdCluster.builder().insecure().servers(1, 8L << 20).start();
        MiniVmdCluster wrong = MiniVmdCluster.builder().insecure().servers(1, 8L << 20).clusterKey(OTHER).start()) {
      assertThatThrownBy(() -> VmdClient.connect(ClientConfig.of(unkeyed.metaAddresses()).withClusterKey(KEY)))
          .hasMessageContaining("does not use a cluster key");
      assertThatThrownBy(() -> VmdClient.connect(ClientConfig.of(wrong.metaAddresses()).withClusterKey(KEY)))
          .hasMessageContaining("could not prove");
    }
  }

  @Test
  void aPeerThatSkipsAuthCannotTouchPages() throws Exception {
    try (MiniVmdCluster c = MiniVmdCluster.builder().insecure().servers(1, 8L << 20).clusterKey(KEY).start();
        Socket s = new Socket(c.addresses().get(0).host(), c.addresses().get(0).port())) {
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      DataInputStream in = new DataInputStream(s.getInputStream());
      // A HELLO with a nonce (as a keyed client sends), then straight to a GET without AUTH.
      ByteBuf hello = Codec.frame(Unpooled.buffer().alloc(), Op.HELLO, 0, 0, 1, 0, 0, 0, 0, b -> {
        Codec.writeString(b, "vmd");
        b.writeBytes(new byte[ClusterKey.NONCE_BYTES]);
      });
      ByteBuf get = Unpooled.buffer();
      Frame.writeHeader(get, Op.GET, 0, 0, 2, 1, 0, 0, 1, 0);
      out.write(bytes(hello));
      out.write(bytes(get));
      out.flush();
      ByteBuf first = readFrame(in);
      assertThat(Frame.status(first)).as("HELLO answered with a challenge").isZero();
      ByteBuf second = readFrame(in);
      assertThat(Frame.requestId(second)).isEqualTo(2);
      assertThat(ErrorCode.of(Frame.status(second))).isEqualTo(ErrorCode.UNAUTHORIZED);
      assertThat(in.read()).as("and the connection is closed").isEqualTo(-1);
    }
  }

  private static byte[] bytes(ByteBuf b) {
    byte[] a = new byte[b.readableBytes()];
    b.readBytes(a);
    b.release();
    return a;
  }

  private static ByteBuf readFrame(DataInputStream in) throws Exception {
    int length = in.readInt();
    byte[] body = new byte[length];
    in.readFully(body);
    return Unpooled.wrappedBuffer(body);
  }
}
