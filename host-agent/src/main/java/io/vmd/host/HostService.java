package io.vmd.host;

import io.vmd.common.tls.Identity;
import io.vmd.migration.qemu.QemuMigration;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * What a host's agent does when its API is called. An IllegalArgumentException is the caller's
 * mistake (INVALID_ARGUMENT), an IllegalStateException a conflict with what runs (FAILED_PRECONDITION);
 * anything else fails the call as INTERNAL, with its message.
 */
public interface HostService {
  HostApi.VmInfo startVm(HostApi.StartVm request) throws Exception;

  HostApi.VmInfo stopVm(String name) throws Exception;

  List<HostApi.VmInfo> listVms() throws Exception;

  /** Sets a VM's balloon: the guest keeps {@code bytes} of RAM. */
  HostApi.VmInfo balloonVm(String name, long bytes) throws Exception;

  /**
   * Migrates a VM of this host to another, reporting QEMU's progress as it goes; {@code cancelled}
   * turns true when the caller gives up (a migration not yet switched over is then cancelled).
   */
  QemuMigration.Result migrate(HostApi.Migrate request, Consumer<HostApi.MigrationUpdate> progress,
      BooleanSupplier cancelled) throws Exception;

  /** Readies this host to receive a VM that {@code caller} (a host, or null with --insecure) migrates here. */
  HostApi.IncomingAt prepareIncoming(HostApi.Incoming request, Identity caller) throws Exception;

  /**
   * At a migration's switch-over, once the source has fenced its gateway: this host's gateway claims
   * the incoming VM's namespace now.
   */
  HostApi.VmInfo takeNamespace(String name, Identity caller) throws Exception;
}
