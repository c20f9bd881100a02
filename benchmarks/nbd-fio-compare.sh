#!/usr/bin/env bash
# fio's nbd engine against the VMD gateway (vmd up: two servers behind a gateway, all on loopback) and
# against nbdkit's memory plugin (the yardstick: one hop, local memory), in one run on one machine.
# Both regions are written first, so reads fetch real pages. Prints a side-by-side table.
# Usage: nbd-fio-compare.sh [SECONDS_PER_JOB]   (default 10)
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
secs="${1:-10}"
"$here/../bin/ensure-deps" fio:fio nbdkit:nbdkit python3:python3
work="$(mktemp -d)"
cleanup() { kill "$vmd_pid" "$nbdkit_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$here/../bin/vmd" up --listen 127.0.0.1:10811 --metrics none --server-memory 1G --size 1G > "$work/vmd.out" 2> "$work/vmd.err" &
vmd_pid=$!
nbdkit -f -i 127.0.0.1 -p 10812 memory 1G &
nbdkit_pid=$!
for i in $(seq 1 100); do grep -q 'VMD is up' "$work/vmd.out" 2>/dev/null && break; sleep 0.2; done
grep -q 'VMD is up' "$work/vmd.out" || { cat "$work/vmd.err" >&2; exit 1; }
declare -A uri=([vmd]=nbd://127.0.0.1:10811/vm1 [nbdkit]=nbd://127.0.0.1:10812/)
run() { # target name fio-args...
  local t=$1 n=$2; shift 2
  fio --name="$n" --ioengine=nbd --uri="${uri[$t]}" --size=256M --time_based --runtime="$secs" \
    --output-format=json "$@" > "$work/$t-$n.json"
}
for t in vmd nbdkit; do
  fio --name=fill --ioengine=nbd --uri="${uri[$t]}" --size=256M --rw=write --bs=1M --iodepth=8 > /dev/null
  run "$t" randread-4k-qd1 --rw=randread --bs=4k --iodepth=1
  run "$t" randwrite-4k-qd1 --rw=randwrite --bs=4k --iodepth=1
  run "$t" randrw70-4k-qd32 --rw=randrw --rwmixread=70 --bs=4k --iodepth=32
  run "$t" read-1m-qd8 --rw=read --bs=1M --iodepth=8
  run "$t" write-1m-qd8 --rw=write --bs=1M --iodepth=8
done
python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
def job(t, n):
    text = open(os.path.join(w, f"{t}-{n}.json")).read()
    j = json.loads(text[text.index("{"):])["jobs"][0]  # fio's nbd engine prints a line first
    return j
def lat(j, side, pct):
    p = j[side]["clat_ns"].get("percentile", {})
    return p.get(pct, 0) / 1000
rows = []
for n, side in [("randread-4k-qd1", "read"), ("randwrite-4k-qd1", "write")]:
    v, k = job("vmd", n), job("nbdkit", n)
    for pct, name in [("50.000000", "p50"), ("99.000000", "p99")]:
        a, b = lat(v, side, pct), lat(k, side, pct)
        rows.append((f"{n} {name} (us)", a, b, a / b if b else 0))
    rows.append((f"{n} IOPS", v[side]["iops"], k[side]["iops"], v[side]["iops"] / k[side]["iops"]))
v, k = job("vmd", "randrw70-4k-qd32"), job("nbdkit", "randrw70-4k-qd32")
iv = v["read"]["iops"] + v["write"]["iops"]; ik = k["read"]["iops"] + k["write"]["iops"]
rows.append(("randrw70-4k-qd32 IOPS", iv, ik, iv / ik))
for n, side in [("read-1m-qd8", "read"), ("write-1m-qd8", "write")]:
    v, k = job("vmd", n), job("nbdkit", n)
    a, b = v[side]["bw_bytes"] / 1e6, k[side]["bw_bytes"] / 1e6
    rows.append((f"{n} MB/s", a, b, a / b))
print(f"{'workload':32} {'VMD':>12} {'nbdkit':>12} {'VMD/nbdkit':>11}")
for r in rows:
    print(f"{r[0]:32} {r[1]:12.1f} {r[2]:12.1f} {r[3]:11.2f}")
PY
