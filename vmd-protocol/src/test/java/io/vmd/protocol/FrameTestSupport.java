package io.vmd.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/** Builders of valid frames and their mutations, shared by the round-trip and fuzz tests. */
public final class FrameTestSupport {
  private FrameTestSupport() {}

  /** A valid request frame of a random op, length prefix included. */
  public static byte[] validRequest(Random r) {
    byte op = (byte) (Op.HELLO + r.nextInt(Op.MAX));
    ByteBufAllocator a = Unpooled.buffer().alloc();
    ByteBuf b;
    int ns = 1 + r.nextInt(4);
    long first = r.nextInt(1000);
    switch (op) {
      case Op.HELLO:
        b = Codec.frame(a, op, 0, 0, r.nextLong(), 0, 0, 0, 0, p -> Codec.writeString(p, "vmd"));
        break;
      case Op.PUT: {
        int count = 1 + r.nextInt(3);
        b = Unpooled.buffer();
        Frame.writeHeader(b, op, 0, 0, r.nextLong(), ns, r.nextInt(3), first, count, count * Pages.PAGE_SIZE);
        byte[] data = new byte[count * Pages.PAGE_SIZE];
        r.nextBytes(data);
        b.writeBytes(data);
        break;
      }
      case Op.GET:
      case Op.DELETE:
        b = Unpooled.buffer();
        Frame.writeHeader(b, op, 0, 0, r.nextLong(), ns, r.nextInt(3), first, 1 + r.nextInt(8), 0);
        break;
      case Op.NS_CREATE: {
        NamespaceRecord rec = new NamespaceRecord(ns, "ns" + ns, 4096L * (1 + r.nextInt(4096)), 1, 0);
        b = Codec.frame(a, op, 0, 0, r.nextLong(), ns, 0, 0, 0, p -> Codec.writeNamespace(p, rec));
        break;
      }
      default:
        b = Unpooled.buffer();
        Frame.writeHeader(b, op, 0, 0, r.nextLong(), ns, r.nextInt(3), 0, 0, 0);
    }
    byte[] out = new byte[b.readableBytes()];
    b.readBytes(out);
    b.release();
    return out;
  }

  /** Flips bits, overwrites bytes, truncates, extends or rewrites header fields. */
  public static byte[] mutate(byte[] frame, Random r) {
    byte[] m = frame.clone();
    int kind = r.nextInt(6);
    switch (kind) {
      case 0:
        for (int i = 0, n = 1 + r.nextInt(4); i < n; i++) {
          m[r.nextInt(m.length)] ^= (byte) (1 << r.nextInt(8));
        }
        return m;
      case 1: {
        // A header field (past the length prefix) set to a random value.
        int at = 4 + r.nextInt(Math.min(Frame.HEADER_SIZE, m.length - 4));
        m[at] = (byte) r.nextInt(256);
        return m;
      }
      case 2:
        return Arrays.copyOf(m, r.nextInt(m.length));
      case 3: {
        byte[] longer = Arrays.copyOf(m, m.length + 1 + r.nextInt(64));
        for (int i = m.length; i < longer.length; i++) {
          longer[i] = (byte) r.nextInt(256);
        }
        return longer;
      }
      case 4: {
        // A consistent length prefix around a damaged body, so the damage reaches the validators.
        int at = 4 + r.nextInt(m.length - 4);
        m[at] = (byte) r.nextInt(256);
        return m;
      }
      default: {
        int[] counts = {-1, 0, Frame.MAX_PAGES + 1, Integer.MAX_VALUE, 1, 3};
        Unpooled.wrappedBuffer(m).setInt(4 + 36, counts[r.nextInt(counts.length)]);
        return m;
      }
    }
  }

  public static byte[] random(Random r) {
    byte[] b = new byte[r.nextInt(200)];
    r.nextBytes(b);
    if (b.length >= 6 && r.nextBoolean()) {
      // Plausible prefix so that random bodies get past the length and magic checks too.
      Unpooled.wrappedBuffer(b).setInt(0, b.length - 4).setShort(4, Frame.MAGIC);
    }
    return b;
  }

  /** Releases decoded frames. */
  public static void release(List<Object> frames) {
    for (Object o : frames) {
      ((ByteBuf) o).release();
    }
  }
}
