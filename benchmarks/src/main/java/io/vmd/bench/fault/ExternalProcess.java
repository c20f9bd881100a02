package io.vmd.bench.fault;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A yardstick server run as a child process on a free 127.0.0.1 port, stopped with the harness. */
final class ExternalProcess implements AutoCloseable {
  final int port;
  private final Process process;
  private final Path log;

  private ExternalProcess(int port, Process process, Path log) {
    this.port = port;
    this.process = process;
    this.log = log;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Starts {@code command} (with %PORT% replaced) and waits until the port accepts connections. */
  static ExternalProcess start(List<String> command) throws IOException, InterruptedException {
    int port = freePort();
    List<String> cmd = command.stream().map(a -> a.replace("%PORT%", String.valueOf(port))).toList();
    Path log = Files.createTempFile("vmd-bench-" + Path.of(cmd.get(0)).getFileName(), ".log");
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    } catch (IOException e) {
      throw new IOException(cmd.get(0) + " is not installed (apt-get install " + cmd.get(0).replace("-server", "")
          + "-server or run ./test.sh as root once): " + e.getMessage(), e);
    }
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        throw new IOException(cmd.get(0) + " exited at start: " + Files.readString(log));
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return new ExternalProcess(port, p, log);
      } catch (IOException notYet) {
        Thread.sleep(50);
      }
    }
    p.destroyForcibly();
    throw new IOException(cmd.get(0) + " did not listen on port " + port + " within 20 s");
  }

  long pid() {
    return process.pid();
  }

  @Override
  public void close() throws IOException, InterruptedException {
    process.destroy();
    if (!process.waitFor(5, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
    Files.deleteIfExists(log);
  }
}
