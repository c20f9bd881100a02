package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.common.HostPort;
import io.vmd.server.MiniVmdCluster;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;

/**
 * A seeded fuzz of both NBD phases against one gateway: a million inputs (options during negotiation,
 * requests during transmission), most of them well-formed with random fields, about a third with
 * random bytes changed. The gateway must answer, refuse or close, and afterwards serve a clean client
 * byte-exact, hold no budget and have no connection left.
 */
class NbdFuzzTest {
  private static final int INPUTS = 1_000_000;
  private static final long EXPORT = 16 << 20;

  @Test
  void aMillionFuzzedInputsLeaveTheGatewayServingAndHoldingNothing() throws Exception {
    long seed = Long.getLong("fuzz.seed", System.nanoTime());
    System.out.println("NbdFuzzTest seed " + seed + " (rerun with -Dfuzz.seed=" + seed + ")");
    Random r = new Random(seed);
    try (GatewayFixture fx = new GatewayFixture(MiniVmdCluster.builder().servers(2, 64L << 20).start(),
        c -> c.withHandshakeTimeout(Duration.ofSeconds(5)))) {
      fx.client.namespaces().create("vm1", EXPORT, 1);
      fx.client.namespaces().create("clean", EXPORT, 2);
      HostPort at = fx.gateway.address();
      long inputs = 0;
      int connections = 0;
      int closedByGateway = 0;
      while (inputs < INPUTS) {
        connections++;
        try (Socket s = new Socket(at.host(), at.port())) {
          s.setSoTimeout(10_000);
          Drain drain = new Drain(s.getInputStream());
          drain.start();
          DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
          try {
            inputs += negotiate(out, r);
            inputs += transmit(out, r, 1000 + r.nextInt(3000));
            if (r.nextInt(4) == 0) {
              request(out, r, NbdProtocol.CMD_DISC, 0, 0, null);
            }
            out.flush();
            s.shutdownOutput();
          } catch (IOException closed) {
            // the gateway closed this connection (a protocol violation): its right
            closedByGateway++;
          }
          drain.join(200);
        }
      }
      System.out.printf("NBD fuzz: %d inputs over %d connections, %d closed by the gateway mid-way, "
          + "%d MiB of replies%n", inputs, connections, closedByGateway, Drain.BYTES.get() >> 20);
      assertThat(inputs).isGreaterThanOrEqualTo(INPUTS);
      Awaitility.await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
        assertThat(fx.gateway.connectionCount()).isZero();
        assertThat(fx.gateway.budgetUsed()).as("budget charged and never released").isZero();
      });
      // Still serving, byte-exact.
      byte[] data = new byte[1 << 20];
      r.nextBytes(data);
      try (RawNbdClient c = new RawNbdClient(at.host(), at.port())) {
        c.structuredReplies();
        assertThat(c.go("clean")).isEqualTo(EXPORT);
        c.request(NbdProtocol.CMD_WRITE, 0, 1, 4096 * 7, data.length, data);
        c.request(NbdProtocol.CMD_READ, 0, 2, 4096 * 7, data.length, null);
        c.flush();
        assertThat(c.reply(0).error()).isZero();
        RawNbdClient.Reply back = c.reply(data.length);
        assertThat(back.error()).isZero();
        assertThat(back.data()).isEqualTo(data);
      }
    }
  }

  /** Reads and drops whatever the gateway sends, until it closes. */
  private static final class Drain extends Thread {
    private final InputStream in;
    static final AtomicLong BYTES = new AtomicLong();

    Drain(InputStream in) {
      this.in = in;
      setDaemon(true);
    }

    @Override
    public void run() {
      byte[] b = new byte[1 << 16];
      try {
        for (int n = in.read(b); n >= 0; n = in.read(b)) {
          BYTES.addAndGet(n);
        }
      } catch (IOException e) {
        // closed
      }
    }
  }

  /** Client flags and a few options, most well-formed, then (usually) GO or EXPORT_NAME; returns inputs sent. */
  private static int negotiate(DataOutputStream out, Random r) throws IOException {
    out.writeInt(r.nextInt(20) == 0 ? r.nextInt() : NbdProtocol.FLAG_C_FIXED_NEWSTYLE | NbdProtocol.FLAG_C_NO_ZEROES);
    int n = r.nextInt(6);
    for (int i = 0; i < n; i++) {
      byte[] option = option(r, r.nextInt(10));
      out.write(r.nextInt(3) == 0 ? mutate(option, r) : option);
    }
    if (r.nextInt(10) == 0) {
      out.write(option(r, 9)); // EXPORT_NAME: no block sizes negotiated
    } else {
      byte[] go = option(r, 4);
      out.write(r.nextInt(20) == 0 ? mutate(go, r) : go);
    }
    return n + 1;
  }

  private static byte[] option(Random r, int kind) {
    String name = r.nextInt(8) == 0 ? "nope" : "vm1";
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    ByteBuffer data;
    int option;
    switch (kind) {
      case 0:
        option = NbdProtocol.OPT_STRUCTURED_REPLY;
        data = ByteBuffer.allocate(0);
        break;
      case 1:
        option = NbdProtocol.OPT_LIST;
        data = ByteBuffer.allocate(0);
        break;
      case 2:
      case 4:
        option = kind == 2 ? NbdProtocol.OPT_INFO : NbdProtocol.OPT_GO;
        int infos = r.nextInt(4);
        data = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos).putInt(n.length).put(n).putShort((short) infos);
        for (int i = 0; i < infos; i++) {
          data.putShort((short) r.nextInt(4));
        }
        break;
      case 3:
      case 5:
        option = kind == 3 ? NbdProtocol.OPT_LIST_META_CONTEXT : NbdProtocol.OPT_SET_META_CONTEXT;
        byte[] q = (r.nextBoolean() ? NbdProtocol.BASE_ALLOCATION : "base:").getBytes(StandardCharsets.UTF_8);
        data = ByteBuffer.allocate(4 + n.length + 4 + 4 + q.length).putInt(n.length).put(n).putInt(1)
            .putInt(q.length).put(q);
        break;
      case 6:
        option = NbdProtocol.OPT_STARTTLS;
        data = ByteBuffer.allocate(0);
        break;
      case 7:
        option = r.nextInt(64);
        byte[] junk = new byte[r.nextInt(64)];
        r.nextBytes(junk);
        data = ByteBuffer.wrap(junk);
        data.position(junk.length);
        break;
      case 8:
        option = NbdProtocol.OPT_ABORT;
        data = ByteBuffer.allocate(0);
        break;
      default:
        option = NbdProtocol.OPT_EXPORT_NAME;
        data = ByteBuffer.allocate(n.length).put(n);
    }
    int len = data.position();
    ByteBuffer b = ByteBuffer.allocate(16 + len).putLong(NbdProtocol.IHAVEOPT).putInt(option).putInt(len);
    b.put(data.array(), 0, len);
    return b.array();
  }

  /** A batch of transmission requests; returns how many. */
  private static int transmit(DataOutputStream out, Random r, int count) throws IOException {
    for (int i = 0; i < count; i++) {
      int type = r.nextInt(40) == 0 ? r.nextInt(1 << 16) : r.nextInt(NbdProtocol.CMD_BLOCK_STATUS + 1);
      if (type == NbdProtocol.CMD_DISC && r.nextInt(10) != 0) {
        type = NbdProtocol.CMD_READ;
      }
      long offset = r.nextInt(20) == 0 ? r.nextLong() : (r.nextBoolean() ? 4096L * r.nextInt(4096) : r.nextInt((int) EXPORT));
      long length = r.nextInt(30) == 0 ? r.nextInt() & 0xffffffffL : r.nextInt(4) == 0 ? 4096 : r.nextInt(1 << 16);
      byte[] payload = null;
      if (type == NbdProtocol.CMD_WRITE) {
        length = r.nextInt(4) == 0 ? 4096 : r.nextInt(8192);
        payload = new byte[(int) length];
        r.nextBytes(payload);
      }
      int flags = r.nextInt(8) == 0 ? r.nextInt(1 << 16) : 0;
      byte[] req = encode(flags, type, r.nextLong(), offset, length, payload);
      out.write(r.nextInt(3) == 0 ? mutate(req, r) : req);
    }
    return count;
  }

  private static void request(DataOutputStream out, Random r, int type, long offset, long length, byte[] payload)
      throws IOException {
    out.write(encode(0, type, r.nextLong(), offset, length, payload));
  }

  private static byte[] encode(int flags, int type, long handle, long offset, long length, byte[] payload) {
    ByteBuffer b = ByteBuffer.allocate(28 + (payload == null ? 0 : payload.length));
    b.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(handle).putLong(offset)
        .putInt((int) length);
    if (payload != null) {
      b.put(payload);
    }
    return b.array();
  }

  /**
   * Changes one to four random bytes, or cuts the input short. The magic (the first 4 bytes of a
   * request, 8 of an option) is hit only now and then: a bad magic closes the connection, and the
   * inputs after it would never be read.
   */
  private static byte[] mutate(byte[] in, Random r) {
    byte[] b = in.clone();
    if (b.length > 1 && r.nextInt(40) == 0) {
      return Arrays.copyOf(b, r.nextInt(b.length));
    }
    int changes = 1 + r.nextInt(4);
    int from = r.nextInt(100) == 0 ? 0 : Math.min(8, b.length - 1);
    for (int i = 0; i < changes && b.length > from; i++) {
      int at = from + r.nextInt(Math.min(b.length, 32) - from);
      b[at] = (byte) (r.nextBoolean() ? r.nextInt(256) : b[at] ^ (1 << r.nextInt(8)));
    }
    return b;
  }
}
