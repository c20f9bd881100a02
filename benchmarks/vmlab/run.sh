#!/usr/bin/env bash
# Boots the guest under QEMU (software emulation: -accel tcg) with 256 MiB of RAM. The guest attaches
# the NBD export NAMESPACE of the gateway at 127.0.0.1:PORT as swap with the kernel's nbd-client and
# runs memcheck over MB MiB. Prints the guest console; exits 0 only when the guest printed PASS.
# Usage: run.sh PORT [NAMESPACE] [MB] [GUEST_MIB]
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
port="${1:?usage: run.sh PORT [NAMESPACE] [MB] [GUEST_MIB]}"
ns="${2:-vm1}"
mb="${3:-384}"
mem="${4:-256}"
dir="$("$here/build.sh")"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
timeout "${VMLAB_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m "$mem" \
  -kernel "$dir/vmlinuz" -initrd "$dir/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 vmlab.port=$port vmlab.ns=$ns vmlab.mb=$mb" \
  -nic user,model=e1000 -display none -serial stdio -monitor none -no-reboot | tee "$log"
grep -q '^VMLAB: PASS' "$log"
