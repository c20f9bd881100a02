#!/usr/bin/env bash
# Builds the guest for the kernel swap test: a Debian kernel (unpacked from its package, never
# installed) and an initramfs with busybox, the kernel's e1000 and nbd modules, Debian's nbd-client
# with the libraries it links, and memcheck. Installs what it needs via apt-get (as root).
# Usage: build.sh [OUT_DIR]  (default ~/.cache/vmd-vmlab); prints the directory. Idempotent.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
out="${1:-${VMD_VMLAB_DIR:-$HOME/.cache/vmd-vmlab}}"
mkdir -p "$out"
"$here/../../bin/ensure-deps" qemu-system-x86:qemu-system-x86_64 busybox-static:busybox nbd-client:nbd-client \
  gcc:gcc cpio:cpio kmod:depmod >&2
stamp="$out/.built-$(sha256sum "$here/init" "$here/memcheck.c" "$here/hotset.c" "$0" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ]; then
  echo "$out"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
kpkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
[ -n "$kpkg" ] || { [ "$(id -u)" = 0 ] && apt-get update -qq >&2; kpkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"; }
[ -n "$kpkg" ] || { echo "build.sh: cannot find the package behind linux-image-amd64" >&2; exit 1; }
(cd "$work" && apt-get download "$kpkg" >&2)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kver="$(ls "$work/kernel/lib/modules")"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"

root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,modules,lib64,lib/x86_64-linux-gnu}
cp "$(command -v busybox)" "$root/bin/busybox"
for m in drivers/net/ethernet/intel/e1000/e1000.ko drivers/block/nbd.ko; do
  cp "$work/kernel/lib/modules/$kver/kernel/$m" "$root/modules/"
done
# For QEMU guests (vmlab.mode=vm): virtio disk and balloon, each after what it needs (modules.dep),
# in modules/virtio.order; modules the kernel has built in are skipped.
moddir="$work/kernel/lib/modules/$kver"
depmod -b "$work/kernel" "$kver"  # the package ships no modules.dep: installing makes it
: > "$root/modules/virtio.order"
load() {
  local line deps d
  line="$(grep -E "(^|/)$1\.ko[^:]*:" "$moddir/modules.dep" | head -1)" || true
  [ -n "$line" ] || return 0
  deps="${line#*:}"
  for d in $(echo $deps | tr ' ' '\n' | tac); do load "$(basename "${d%%.ko*}")"; done
  local f="${line%%:*}"
  grep -qx "$(basename "$f")" "$root/modules/virtio.order" && return 0
  cp "$moddir/$f" "$root/modules/"
  basename "$f" >> "$root/modules/virtio.order"
}
for m in virtio_pci virtio_blk virtio_balloon; do load "$m"; done
nbd="$(command -v nbd-client)"
cp "$nbd" "$root/sbin/nbd-client"
# The dynamic loader and every library nbd-client links, at the paths ldd reports.
ldd "$nbd" | grep -oE '/[^ ]+' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
gcc -O2 -static -o "$root/memcheck" "$here/memcheck.c"
gcc -O2 -static -o "$root/hotset" "$here/hotset.c"
cp "$here/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$out/initrd.gz")
rm -f "$out"/.built-*
echo "$kver" > "$stamp"
echo "$out"
