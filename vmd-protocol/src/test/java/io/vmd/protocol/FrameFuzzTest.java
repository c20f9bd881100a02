package io.vmd.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * 100,000 seeded random and mutated frames through the decoder and the validators: every input is
 * either decoded, rejected as a protocol violation, or judged malformed with a reason. No other
 * exception, and no validator ever throws.
 */
class FrameFuzzTest {
  static final int FRAMES = 100_000;

  @Test
  void decoderAndValidatorsSurviveRandomAndMutatedFrames() {
    long seed = Long.getLong("fuzz.seed", System.nanoTime());
    System.out.println("FrameFuzzTest seed " + seed + " (rerun with -Dfuzz.seed=" + seed + ")");
    Random r = new Random(seed);
    int decoded = 0;
    int violations = 0;
    int malformed = 0;
    for (int i = 0; i < FRAMES; i++) {
      byte[] input = i % 3 == 0 ? FrameTestSupport.random(r) : FrameTestSupport.mutate(FrameTestSupport.validRequest(r), r);
      EmbeddedChannel ch = new EmbeddedChannel(new FrameDecoder());
      try {
        ch.writeInbound(Unpooled.wrappedBuffer(input));
      } catch (DecoderException e) {
        assertThat(e.getCause()).as("seed %d frame %d", seed, i).isInstanceOf(ProtocolException.class);
        violations++;
        continue;
      } catch (RuntimeException e) {
        fail("seed " + seed + " frame " + i + ": unexpected " + e, e);
      }
      ByteBuf f;
      while ((f = ch.readInbound()) != null) {
        try {
          decoded++;
          String req = Frame.checkRequest(f);
          String rep = Frame.checkReply(f);
          if (req != null) {
            malformed++;
          }
          if (req == null && rep == null) {
            fail("seed " + seed + " frame " + i + " is valid both as request and reply");
          }
          if (req == null) {
            try {
              decodeControlPayload(f);
            } catch (IllegalArgumentException expected) {
              malformed++;
            }
          }
        } finally {
          f.release();
        }
      }
      ch.finishAndReleaseAll();
    }
    System.out.printf("fuzz: %d frames, %d decoded, %d protocol violations, %d malformed%n",
        FRAMES, decoded, violations, malformed);
    assertThat(decoded).isGreaterThan(FRAMES / 4);
    assertThat(violations).isGreaterThan(FRAMES / 10);
    assertThat(malformed).isGreaterThan(1000);
  }

  private static void decodeControlPayload(ByteBuf f) {
    ByteBuf p = Frame.skipHeader(f.duplicate());
    switch (Frame.op(f)) {
      case Op.HELLO:
        Codec.readString(p);
        break;
      case Op.NS_CREATE:
        Codec.readNamespace(p);
        break;
      default:
        break;
    }
  }
}
