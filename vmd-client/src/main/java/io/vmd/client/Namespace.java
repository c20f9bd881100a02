package io.vmd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vmd.protocol.ErrorCode;
import io.vmd.protocol.Frame;
import io.vmd.protocol.NamespaceRecord;
import io.vmd.protocol.Op;
import io.vmd.protocol.Pages;
import java.util.concurrent.CompletableFuture;

/**
 * An attached namespace: page reads, writes and deletes spread over the cluster.
 *
 * <p>Writes place each run of new pages (up to {@link #PLACEMENT_RUN} adjacent pages, one frame) on
 * R servers chosen by the placement policy; rewritten pages go where they already live. Adjacent
 * pages with the same servers travel in one frame. The caller orders operations on the same page
 * (the NBD gateway does); operations on different pages may run concurrently from any thread.
 *
 * <p>Buffers passed in must stay untouched until the returned future completes.
 */
public final class Namespace {
  /** Most adjacent new pages placed together: big writes still spread over the servers. */
  static final int PLACEMENT_RUN = 32;

  private final VmdClient client;
  private final NamespaceRecord record;
  private final LocationTable locations;
  private final boolean writable;

  Namespace(VmdClient client, NamespaceRecord record, LocationTable locations, boolean writable) {
    this.client = client;
    this.record = record;
    this.locations = locations;
    this.writable = writable;
  }

  public NamespaceRecord record() {
    return record;
  }

  public String name() {
    return record.name();
  }

  public long sizeBytes() {
    return record.sizeBytes();
  }

  public long pages() {
    return record.pages();
  }

  /** The epoch this handle writes with. */
  public long epoch() {
    return record.epoch();
  }

  public LocationTable locations() {
    return locations;
  }

  private VmdException outOfRange(long first, long count) {
    return new VmdException(ErrorCode.BAD_REQUEST, "pages " + first + ".." + (first + count - 1)
        + " are outside namespace '" + name() + "' of " + pages() + " pages");
  }

  private boolean inRange(long first, long count) {
    return first >= 0 && count >= 0 && first <= pages() && count <= pages() - first;
  }

  // ---------------------------------------------------------------- write

  /** Writes {@code count} pages from {@code src}'s readable bytes (reader index not moved). */
  public CompletableFuture<Void> write(long firstPage, int count, ByteBuf src) {
    if (!writable) {
      return CompletableFuture.failedFuture(new VmdException(ErrorCode.BAD_REQUEST,
          "namespace '" + name() + "' was attached read-only"));
    }
    if (!inRange(firstPage, count)) {
      return CompletableFuture.failedFuture(outOfRange(firstPage, count));
    }
    if (src.readableBytes() < (long) count * Pages.PAGE_SIZE) {
      return CompletableFuture.failedFuture(new VmdException(ErrorCode.BAD_REQUEST,
          src.readableBytes() + " bytes given for " + count + " pages"));
    }
    WriteOp op = new WriteOp(src.retain());
    int i = 0;
    while (i < count) {
      long page = firstPage + i;
      int j = i + 1;
      if (locations.stored(page)) {
        while (j < count && j - i < Frame.MAX_PAGES && locations.sameLocation(page, firstPage + j)) {
          j++;
        }
        for (int r = 0; r < locations.replicas(); r++) {
          int server = locations.get(page, r);
          if (server != LocationTable.NONE) {
            sendPut(op, server, page, j - i, i, false, r);
          }
        }
      } else {
        while (j < count && j - i < PLACEMENT_RUN && !locations.stored(firstPage + j)) {
          j++;
        }
        placeAndPut(op, page, j - i, i);
      }
      i = j;
    }
    op.finish();
    return op;
  }

  private void placeAndPut(WriteOp op, long page, int count, int srcPage) {
    int[] chosen = new int[locations.replicas()];
    long bytes = (long) count * Pages.PAGE_SIZE;
    int n = client.placement().choose(client.servers(), locations.replicas(), bytes, chosen);
    if (n < locations.replicas()) {
      op.fail(noSpace(count, n));
      return;
    }
    for (int r = 0; r < n; r++) {
      client.servers()[chosen[r]].placed(bytes);
      for (int k = 0; k < count; k++) {
        locations.set(page + k, r, chosen[r]);
      }
    }
    for (int r = 0; r < n; r++) {
      sendPut(op, chosen[r], page, count, srcPage, true, r);
    }
  }

  private VmdException noSpace(int count, int found) {
    return new VmdException(ErrorCode.NO_SPACE, "no room in the cluster for " + count
        + " new pages of namespace '" + name() + "' with " + locations.replicas() + " replicas ("
        + found + " servers have room)");
  }

  private void sendPut(WriteOp op, int server, long page, int count, int srcPage, boolean fresh, int slot) {
    ServerConnection conn = client.connection(server);
    long id = conn.nextId();
    ByteBuf header = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
    Frame.writeHeader(header, Op.PUT, 0, 0, id, record.id(), record.epoch(), page, count,
        count * Pages.PAGE_SIZE);
    ByteBuf payload = op.src.retainedSlice(op.src.readerIndex() + srcPage * Pages.PAGE_SIZE,
        count * Pages.PAGE_SIZE);
    op.begin();
    conn.send(id, header, payload, new PutFrame(op, server, page, count, srcPage, fresh, slot));
  }

  private final class WriteOp extends IoOp {
    final ByteBuf src;

    WriteOp(ByteBuf src) {
      this.src = src;
    }

    @Override
    void succeeded() {
      src.release();
    }

    @Override
    void failed() {
      src.release();
    }
  }

  private final class PutFrame extends Pending {
    final WriteOp op;
    final int server;
    final long page;
    final int count;
    final int srcPage;
    final boolean fresh;
    final int slot;

    PutFrame(WriteOp op, int server, long page, int count, int srcPage, boolean fresh, int slot) {
      this.op = op;
      this.server = server;
      this.page = page;
      this.count = count;
      this.srcPage = srcPage;
      this.fresh = fresh;
      this.slot = slot;
    }

    @Override
    void onReply(ByteBuf f) {
      int status = Frame.status(f);
      if (status == 0) {
        op.finish();
      } else if (status == ErrorCode.NO_SPACE.code && fresh) {
        client.servers()[server].full();
        replace();
      } else {
        if (fresh) {
          clearSlot();
        }
        op.fail(client.error(f, server));
      }
    }

    /** The server filled up before its report said so: move this copy to another server. */
    private void replace() {
      long bytes = (long) count * Pages.PAGE_SIZE;
      ServerState[] servers = client.servers();
      int[] candidates = new int[servers.length];
      int n = client.placement().choose(servers, servers.length, bytes, candidates);
      for (int c = 0; c < n; c++) {
        int s = candidates[c];
        boolean holdsOther = false;
        for (int r = 0; r < locations.replicas(); r++) {
          holdsOther |= r != slot && locations.get(page, r) == s;
        }
        if (!holdsOther) {
          servers[s].placed(bytes);
          for (int k = 0; k < count; k++) {
            locations.set(page + k, slot, s);
          }
          sendPut(op, s, page, count, srcPage, true, slot);
          op.finish();
          return;
        }
      }
      clearSlot();
      op.fail(noSpace(count, 0));
    }

    private void clearSlot() {
      for (int k = 0; k < count; k++) {
        if (locations.get(page + k, slot) == server) {
          locations.set(page + k, slot, LocationTable.NONE);
        }
      }
    }

    @Override
    void onFailure(VmdException e) {
      if (fresh) {
        clearSlot();
      }
      op.fail(e);
    }
  }

  // ---------------------------------------------------------------- read

  /**
   * Reads {@code count} pages into {@code dst} at its writer index, which moves on by
   * {@code count * 4096} when the future completes. Pages never written read as zeros.
   */
  public CompletableFuture<Void> read(long firstPage, int count, ByteBuf dst) {
    if (!inRange(firstPage, count)) {
      return CompletableFuture.failedFuture(outOfRange(firstPage, count));
    }
    int base = dst.writerIndex();
    dst.ensureWritable(count * Pages.PAGE_SIZE);
    ReadOp op = new ReadOp(dst, base + count * Pages.PAGE_SIZE);
    int i = 0;
    while (i < count) {
      long page = firstPage + i;
      int server = locations.primary(page);
      int j = i + 1;
      if (server == LocationTable.NONE) {
        while (j < count && !locations.stored(firstPage + j)) {
          j++;
        }
        PageCopy.zero(dst, base + i * Pages.PAGE_SIZE, (j - i) * Pages.PAGE_SIZE);
      } else {
        while (j < count && j - i < Frame.MAX_PAGES && locations.primary(firstPage + j) == server) {
          j++;
        }
        ServerConnection conn = client.connection(server);
        long id = conn.nextId();
        ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
        Frame.writeHeader(frame, Op.GET, 0, 0, id, record.id(), record.epoch(), page, j - i, 0);
        op.begin();
        conn.send(id, frame, new GetFrame(op, server, page, j - i, base + i * Pages.PAGE_SIZE));
      }
      i = j;
    }
    op.finish();
    return op;
  }

  private static final class ReadOp extends IoOp {
    final ByteBuf dst;
    final int end;

    ReadOp(ByteBuf dst, int end) {
      this.dst = dst;
      this.end = end;
    }

    @Override
    void succeeded() {
      dst.writerIndex(end);
    }
  }

  private final class GetFrame extends Pending {
    final ReadOp op;
    final int server;
    final long page;
    final int count;
    final int dstIndex;

    GetFrame(ReadOp op, int server, long page, int count, int dstIndex) {
      this.op = op;
      this.server = server;
      this.page = page;
      this.count = count;
      this.dstIndex = dstIndex;
    }

    @Override
    void onReply(ByteBuf f) {
      if (Frame.status(f) != 0) {
        op.fail(client.error(f, server));
        return;
      }
      int bitmapAt = Frame.payloadIndex(f);
      int pageAt = bitmapAt + Frame.bitmapBytes(count);
      for (int i = 0; i < count; i++) {
        boolean present = (f.getLong(bitmapAt + ((i >>> 6) << 3)) & (1L << (i & 63))) != 0;
        if (present) {
          PageCopy.copy(f, pageAt, op.dst, dstIndex + i * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
          pageAt += Pages.PAGE_SIZE;
        } else if (locations.stored(page + i)) {
          op.fail(new VmdException(ErrorCode.UNAVAILABLE, "page " + (page + i) + " of namespace '"
              + name() + "' is missing on server " + client.servers()[server].address()));
          return;
        } else {
          // Deleted while the read was in flight: it reads as never written.
          PageCopy.zero(op.dst, dstIndex + i * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
        }
      }
      op.finish();
    }

    @Override
    void onFailure(VmdException e) {
      op.fail(e);
    }
  }

  // ---------------------------------------------------------------- delete

  /** Deletes the stored pages of the range on every server holding them; memory goes back. */
  public CompletableFuture<Void> delete(long firstPage, long count) {
    if (!writable) {
      return CompletableFuture.failedFuture(new VmdException(ErrorCode.BAD_REQUEST,
          "namespace '" + name() + "' was attached read-only"));
    }
    if (!inRange(firstPage, count)) {
      return CompletableFuture.failedFuture(outOfRange(firstPage, count));
    }
    boolean[] holds = new boolean[client.servers().length];
    for (long p = firstPage; p < firstPage + count; p++) {
      for (int r = 0; r < locations.replicas(); r++) {
        int s = locations.get(p, r);
        if (s != LocationTable.NONE) {
          holds[s] = true;
        }
      }
      locations.clear(p);
    }
    IoOp op = new IoOp();
    for (int s = 0; s < holds.length; s++) {
      if (!holds[s]) {
        continue;
      }
      int server = s;
      for (long at = firstPage; at < firstPage + count; at += Integer.MAX_VALUE) {
        int n = (int) Math.min(Integer.MAX_VALUE, firstPage + count - at);
        ServerConnection conn = client.connection(s);
        long id = conn.nextId();
        ByteBuf frame = conn.header(Frame.LENGTH_FIELD + Frame.HEADER_SIZE);
        Frame.writeHeader(frame, Op.DELETE, 0, 0, id, record.id(), record.epoch(), at, n, 0);
        op.begin();
        conn.send(id, frame, new Pending() {
          @Override
          void onReply(ByteBuf f) {
            if (Frame.status(f) != 0) {
              op.fail(client.error(f, server));
            } else {
              client.servers()[server].placed(-f.getLong(Frame.payloadIndex(f)) * Pages.PAGE_SIZE);
              op.finish();
            }
          }

          @Override
          void onFailure(VmdException e) {
            op.fail(e);
          }
        });
      }
    }
    op.finish();
    return op;
  }

  // ---------------------------------------------------------------- blocking conveniences

  public void writeSync(long firstPage, byte[] data) throws VmdException {
    if (data.length % Pages.PAGE_SIZE != 0) {
      throw new VmdException(ErrorCode.BAD_REQUEST, "data is not a whole number of pages");
    }
    VmdClient.await(write(firstPage, data.length / Pages.PAGE_SIZE, Unpooled.wrappedBuffer(data)));
  }

  public byte[] readSync(long firstPage, int count) throws VmdException {
    ByteBuf dst = Unpooled.buffer(count * Pages.PAGE_SIZE);
    VmdClient.await(read(firstPage, count, dst));
    return dst.array();
  }

  public void deleteSync(long firstPage, long count) throws VmdException {
    VmdClient.await(delete(firstPage, count));
  }
}
