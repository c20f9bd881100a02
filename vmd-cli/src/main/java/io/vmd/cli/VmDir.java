package io.vmd.cli;

import io.vmd.migration.qemu.QemuVm;
import io.vmd.migration.qemu.Qmp;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/** Where VMs keep their files, and how a command reaches one of them: for {@code vmd vm} and {@code vmd migrate}. */
final class VmDir {
  @Option(names = "--vm-dir", scope = CommandLine.ScopeType.INHERIT, paramLabel = "DIR",
      defaultValue = "${env:VMD_VM_DIR:-${sys:user.home}/.local/state/vmd/vms}",
      description = "Where VMs keep their files (default: ${DEFAULT-VALUE}).")
  Path root;

  Path of(String name) {
    return root.resolve(QemuVm.checkName(name));
  }

  /** The QMP connection of VM {@code name}, with a clear error when there is none or it is stopped. */
  Qmp reach(String name) throws IOException {
    Path dir = of(name);
    if (!Files.exists(dir.resolve(QemuVm.SPEC))) {
      throw new IOException("no VM named '" + name + "' in " + root);
    }
    if (!Files.exists(dir.resolve(QemuVm.QMP))) {
      throw new IOException("VM '" + name + "' is not running (start it with vmd vm start)");
    }
    try {
      return QemuVm.attach(dir, name);
    } catch (IOException e) {
      throw new IOException("VM '" + name + "' is not running (its QMP socket does not answer)", e);
    }
  }

  /** Where benchmarks/vmlab/build.sh puts the guest's kernel and initramfs: $VMD_VMLAB_DIR or ~/.cache/vmd-vmlab. */
  static Path vmlab() {
    return Path.of(System.getenv().getOrDefault("VMD_VMLAB_DIR", System.getProperty("user.home") + "/.cache/vmd-vmlab"));
  }

  /** Whether VM {@code name} was started on this machine, in this directory (running or not). */
  boolean has(String name) {
    return Files.exists(of(name).resolve(QemuVm.SPEC));
  }

  /** What VM {@code name} was started with (its vm.properties: name, memory, namespace, gateway, incoming). */
  Properties spec(String name) throws IOException {
    if (!has(name)) {
      throw new IOException("no VM named '" + name + "' in " + root);
    }
    return QemuVm.startedWith(of(name));
  }

  /** Whether VM {@code name}'s QEMU answers on its socket. */
  boolean running(String name) {
    try (Qmp q = reach(name)) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
