package io.vmd.migration.qemu;

/** QEMU refused a QMP command (its error class and description), or did not answer. */
public final class QmpException extends Exception {
  private final String command;

  public QmpException(String command, String message) {
    super(command + ": " + message);
    this.command = command;
  }

  public String command() {
    return command;
  }
}
