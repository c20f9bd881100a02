package io.vmd.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.common.HostPort;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Protocol edges of the gateway: errors are replies, violations close one connection, pipelines run deep. */
class NbdProtocolTest {
  private static final long MIB = 1 << 20;
  private GatewayFixture fx;

  @BeforeEach
  void start() throws Exception {
    fx = new GatewayFixture(2, 64 * MIB);
    fx.client.namespaces().create("vm1", 16 * MIB, 1);
  }

  @AfterEach
  void stop() {
    fx.close();
  }

  private RawNbdClient connect(boolean structured) throws Exception {
    HostPort at = fx.gateway.address();
    RawNbdClient c = new RawNbdClient(at.host(), at.port());
    if (structured) {
      c.structuredReplies();
    }
    assertThat(c.go("vm1")).isEqualTo(16 * MIB);
    return c;
  }

  @Test
  void unknownOptionAndExportGetErrorRepliesAndNegotiationGoesOn() throws Exception {
    HostPort at = fx.gateway.address();
    try (RawNbdClient c = new RawNbdClient(at.host(), at.port())) {
      c.sendOption(77, new byte[] {1, 2, 3});
      RawNbdClient.OptionReply r = c.readOptionReply();
      assertThat(r.type()).isEqualTo(NbdProtocol.REP_ERR_UNSUP);
      assertThat(r.option()).isEqualTo(77);
      c.sendOption(NbdProtocol.OPT_GO, RawNbdClient.goData("nope"));
      RawNbdClient.OptionReply unknown = c.readOptionReply();
      assertThat(unknown.type()).isEqualTo(NbdProtocol.REP_ERR_UNKNOWN);
      assertThat(unknown.text()).contains("nope");
      c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, new byte[8]);
      assertThat(c.readOptionReply().type()).as("meta context before structured replies").isEqualTo(NbdProtocol.REP_ERR_INVALID);
      c.sendOption(NbdProtocol.OPT_LIST, new byte[1]);
      assertThat(c.readOptionReply().type()).isEqualTo(NbdProtocol.REP_ERR_INVALID);
      assertThat(c.go("vm1")).isEqualTo(16 * MIB);
    }
    try (RawNbdClient c = new RawNbdClient(at.host(), at.port())) {
      c.sendOption(NbdProtocol.OPT_ABORT, new byte[0]);
      assertThat(c.readOptionReply().type()).isEqualTo(NbdProtocol.REP_ACK);
      assertThat(c.closedByServer()).isTrue();
    }
  }

  @Test
  void outOfRangeRequestsGetErrorsAndTheConnectionLivesOn() throws Exception {
    for (boolean structured : new boolean[] {false, true}) {
      try (RawNbdClient c = connect(structured)) {
        c.request(NbdProtocol.CMD_READ, 0, 1, 16 * MIB - 100, 4096, null);
        c.request(NbdProtocol.CMD_WRITE, 0, 2, 16 * MIB, 512, new byte[512]);
        c.request(NbdProtocol.CMD_TRIM, 0, 3, 16 * MIB, 4096, null);
        c.request(NbdProtocol.CMD_READ, 0, 4, 0, 33 << 20, null);
        c.request(99, 0, 5, 0, 0, null);
        c.request(NbdProtocol.CMD_BLOCK_STATUS, 0, 6, 0, 4096, null);
        c.request(NbdProtocol.CMD_READ, 0, 7, 0, 4096, null);
        c.flush();
        Map<Long, RawNbdClient.Reply> replies = new HashMap<>();
        for (int i = 0; i < 7; i++) {
          RawNbdClient.Reply r = c.reply(4096);
          replies.put(r.handle(), r);
        }
        assertThat(replies.get(1L).error()).isEqualTo(NbdProtocol.EINVAL);
        assertThat(replies.get(2L).error()).isEqualTo(NbdProtocol.ENOSPC);
        assertThat(replies.get(3L).error()).isEqualTo(NbdProtocol.EINVAL);
        assertThat(replies.get(4L).error()).isEqualTo(NbdProtocol.EINVAL);
        assertThat(replies.get(5L).error()).isEqualTo(NbdProtocol.EINVAL);
        assertThat(replies.get(6L).error()).as("BLOCK_STATUS without a meta context").isEqualTo(NbdProtocol.EINVAL);
        assertThat(replies.get(7L).error()).isZero();
        assertThat(replies.get(7L).data()).isEqualTo(new byte[4096]);
        if (structured) {
          assertThat(replies.get(2L).message()).contains("past the end");
        }
      }
    }
  }

  @Test
  void aProtocolViolationClosesOnlyItsOwnConnection() throws Exception {
    try (RawNbdClient good = connect(true); RawNbdClient bad = connect(true)) {
      bad.out.writeInt(0x12345678);
      bad.out.write(new byte[24]);
      bad.flush();
      assertThat(bad.closedByServer()).isTrue();
      try (RawNbdClient huge = connect(false)) {
        huge.request(NbdProtocol.CMD_WRITE, 0, 1, 0, 64 << 20, null);
        huge.flush();
        assertThat(huge.closedByServer()).as("a WRITE over the maximum").isTrue();
      }
      good.request(NbdProtocol.CMD_WRITE, 0, 9, 0, 4096, new byte[4096]);
      good.flush();
      assertThat(good.reply(0).error()).isZero();
    }
  }

  @Test
  void twoHundredFiftySixRequestsInFlightOnOneConnectionAreAllAnswered() throws Exception {
    Random r = new Random(11);
    byte[][] pages = new byte[256][4096];
    try (RawNbdClient c = connect(true)) {
      for (int i = 0; i < 256; i++) {
        r.nextBytes(pages[i]);
        c.request(NbdProtocol.CMD_WRITE, i % 2 == 0 ? NbdProtocol.CMD_FLAG_FUA : 0, 1000 + i, (long) i * 4096, 4096, pages[i]);
      }
      c.flush();
      Set<Long> handles = new HashSet<>();
      for (int i = 0; i < 256; i++) {
        RawNbdClient.Reply rep = c.reply(0);
        assertThat(rep.error()).isZero();
        handles.add(rep.handle());
      }
      assertThat(handles).hasSize(256);
      for (int i = 0; i < 256; i++) {
        c.request(NbdProtocol.CMD_READ, 0, i, (long) i * 4096, 4096, null);
      }
      c.flush();
      for (int i = 0; i < 256; i++) {
        RawNbdClient.Reply rep = c.reply(4096);
        assertThat(rep.data()).as("page %d", rep.handle()).isEqualTo(pages[(int) rep.handle()]);
      }
    }
  }

  @Test
  void overlappingSubPageWritesNeverLoseAnUpdateAndOtherConnectionsSeeThem() throws Exception {
    long seed = System.nanoTime();
    System.out.println("overlapping writes seed " + seed);
    Random r = new Random(seed);
    byte[] model = new byte[64 * 1024];
    try (RawNbdClient a = connect(true); RawNbdClient b = connect(false)) {
      // Both connections pipeline 200 small writes each into the same 16 pages. Each connection's
      // writes apply in its own order; the two interleave, but no byte of any write is lost.
      for (int round = 0; round < 4; round++) {
        int[][] ops = new int[100][];
        for (int i = 0; i < ops.length; i++) {
          int len = 1 + r.nextInt(700);
          int off = r.nextInt(model.length - len);
          ops[i] = new int[] {off, len, i % 2, 1 + r.nextInt(250)};
        }
        // Writes of different connections never overlap in bytes within a round, so the final
        // content is determined: each byte's last writer is within one connection.
        boolean[] owner = new boolean[model.length];
        for (int[] op : ops) {
          Arrays.fill(owner, op[0], op[0] + op[1], op[2] == 1);
        }
        int sentA = 0;
        int sentB = 0;
        for (int[] op : ops) {
          boolean onB = op[2] == 1;
          int from = op[0];
          int to = op[0] + op[1];
          // Trim each write to the bytes its connection owns in this round.
          int s = from;
          while (s < to) {
            while (s < to && owner[s] != onB) {
              s++;
            }
            int e = s;
            while (e < to && owner[e] == onB) {
              e++;
            }
            if (e > s) {
              byte[] data = new byte[e - s];
              Arrays.fill(data, (byte) op[3]);
              System.arraycopy(data, 0, model, s, data.length);
              (onB ? b : a).request(NbdProtocol.CMD_WRITE, 0, 1, s, data.length, data);
              if (onB) {
                sentB++;
              } else {
                sentA++;
              }
            }
            s = e;
          }
        }
        a.flush();
        b.flush();
        for (int i = 0; i < sentA; i++) {
          assertThat(a.reply(0).error()).isZero();
        }
        for (int i = 0; i < sentB; i++) {
          assertThat(b.reply(0).error()).isZero();
        }
      }
      // A third connection reads what both wrote.
      try (RawNbdClient c = connect(true)) {
        c.request(NbdProtocol.CMD_READ, 0, 1, 0, model.length, null);
        c.flush();
        assertThat(c.reply(model.length).data()).as("seed %d", seed).isEqualTo(model);
      }
    }
  }

  @Test
  void writeZeroesAndBlockStatus() throws Exception {
    try (RawNbdClient c = connect(true)) {
      byte[] ones = new byte[5 * 4096];
      Arrays.fill(ones, (byte) 1);
      c.request(NbdProtocol.CMD_WRITE, 0, 1, 0, ones.length, ones);
      c.request(NbdProtocol.CMD_WRITE_ZEROES, 0, 2, 100, 3 * 4096, null);
      c.request(NbdProtocol.CMD_READ, 0, 3, 0, ones.length, null);
      c.flush();
      assertThat(c.reply(0).error()).isZero();
      assertThat(c.reply(0).error()).isZero();
      byte[] want = ones.clone();
      Arrays.fill(want, 100, 100 + 3 * 4096, (byte) 0);
      assertThat(c.reply(ones.length).data()).isEqualTo(want);
      // Pages 1 and 2 were whole inside the range: they are holes now, their memory given back.
      assertThat(fx.storedPages(1)).isEqualTo(3);
    }
  }

  @Test
  void aFullClusterAnswersEnospcAndADeadServerEio() throws Exception {
    fx.close();
    fx = new GatewayFixture(2, 64 * 4096);
    fx.client.namespaces().create("vm1", 16 * MIB, 1);
    try (RawNbdClient c = connect(true)) {
      byte[] page = new byte[4096];
      int errors = 0;
      for (int i = 0; i < 140; i++) {
        c.request(NbdProtocol.CMD_WRITE, 0, i, (long) i * 4096, 4096, page);
        c.flush();
        RawNbdClient.Reply r = c.reply(0);
        if (r.error() != 0) {
          assertThat(r.error()).isEqualTo(NbdProtocol.ENOSPC);
          assertThat(r.message()).contains("no room");
          errors++;
        }
      }
      assertThat(errors).isEqualTo(140 - 128);
      fx.cluster.kill(0);
      org.awaitility.Awaitility.await().until(() -> !fx.client.cluster().servers().get(0).up());
      int eio = 0;
      for (int i = 0; i < 128; i++) {
        c.request(NbdProtocol.CMD_READ, 0, i, (long) i * 4096, 4096, null);
        c.flush();
        RawNbdClient.Reply r = c.reply(4096);
        if (r.error() != 0) {
          assertThat(r.error()).isEqualTo(NbdProtocol.EIO);
          eio++;
        }
      }
      assertThat(eio).isEqualTo(64);
    }
  }
}
