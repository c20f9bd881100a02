#!/usr/bin/env bash
# The whole test suite: unit, fuzz, integration and end-to-end tests of every module.
# Installs what it needs first: a JDK, Maven through the wrapper, and the NBD clients the interop
# tests drive (qemu-utils, libnbd-bin, fio, nbdkit; via apt-get as root), swapon/mkswap for the
# pagemap tests, libvirt's virt-xml-validate for the documented domain, asciidoctor for the release's
# man pages, and systemd's systemd-analyze and systemd-socket-activate for the release's units and the
# socket-activated gateway. Extra Maven arguments pass through.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
# swapon, mkswap (the pagemap and cgroup tests) and other admin tools live in sbin.
export PATH="$PATH:/usr/sbin:/sbin"
bin/ensure-deps qemu-utils:qemu-img libnbd-bin:nbdinfo fio:fio nbdkit:nbdkit qemu-system-x86:qemu-system-x86_64 \
  busybox-static:busybox nbd-client:nbd-client cpio:cpio gcc:gcc redis-server:redis-server \
  util-linux:mkswap mount:swapon openssl:openssl prometheus:promtool tcpdump:tcpdump \
  libvirt-clients:virt-xml-validate libxml2-utils:xmllint asciidoctor:asciidoctor systemd:systemd-analyze \
  systemd:systemd-socket-activate
exec ./mvnw -B -ntp verify "$@"
