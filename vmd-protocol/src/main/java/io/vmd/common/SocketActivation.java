package io.vmd.common;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Listening sockets handed over by systemd's socket activation (a {@code .socket} unit, or
 * {@code systemd-socket-activate}), as nbdkit takes them (nbdkit-service(1)): {@code LISTEN_PID} names
 * this process and {@code LISTEN_FDS} counts the descriptors, which start at 3. The sockets outlive the
 * process, so a restarted gateway serves the same addresses and clients that connect meanwhile wait.
 */
public final class SocketActivation {
  /** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
  static final int FIRST_FD = 3;
  private static final Pattern SOCKET_LINK = Pattern.compile("socket:\\[(\\d+)]");

  /**
   * One inherited listening socket: its descriptor, whether it is a Unix socket (else TCP), and a Unix
   * socket's path (null for TCP, or for an abstract or unnamed socket).
   */
  public record Listener(int fd, boolean unix, Path path) {}

  private SocketActivation() {}

  /** This process's inherited listeners, or none when it was not socket-activated. */
  public static List<Listener> inherited() throws IOException {
    return inherited(System.getenv(), ProcessHandle.current().pid(), Path.of("/proc"));
  }

  static List<Listener> inherited(Map<String, String> env, long pid, Path proc) throws IOException {
    String forPid = env.get("LISTEN_PID");
    String fds = env.get("LISTEN_FDS");
    if (forPid == null || fds == null) {
      return List.of();
    }
    if (Long.parseLong(forPid.trim()) != pid) {
      return List.of(); // meant for the process that started this one
    }
    int count = Integer.parseInt(fds.trim());
    if (count < 1 || count > 64) {
      throw new IOException("LISTEN_FDS=" + fds + ": expected 1 to 64 sockets");
    }
    Map<Long, String> unixInodes = unixSockets(proc.resolve("net/unix"));
    List<Listener> out = new ArrayList<>();
    for (int fd = FIRST_FD; fd < FIRST_FD + count; fd++) {
      Path link = proc.resolve("self/fd/" + fd);
      String target = Files.isSymbolicLink(link) ? Files.readSymbolicLink(link).toString() : "";
      Matcher m = SOCKET_LINK.matcher(target);
      if (!m.matches()) {
        throw new IOException("socket activation: descriptor " + fd + " is not a socket (" + target + ")");
      }
      long inode = Long.parseLong(m.group(1));
      String path = unixInodes.get(inode);
      out.add(new Listener(fd, path != null, path == null || path.isEmpty() ? null : Path.of(path)));
    }
    return out;
  }

  /** This network namespace's Unix sockets, inode to path ("" when unnamed), from /proc/net/unix. */
  private static Map<Long, String> unixSockets(Path netUnix) throws IOException {
    Map<Long, String> sockets = new HashMap<>();
    List<String> lines = Files.readAllLines(netUnix);
    for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
      String[] f = line.trim().split("\\s+", 8);
      if (f.length >= 7) {
        sockets.put(Long.parseLong(f[6]), f.length == 8 ? f[7] : "");
      }
    }
    return sockets;
  }
}
