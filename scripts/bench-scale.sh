#!/usr/bin/env bash
# The port path's scaling with switch threads (issue 15 point 3): `onvm bench` with
# `--rx-threads K` for K = 1..MAX, rounds interleaved (K=1, 2, .., MAX, then again), on
# a machine with a core for each thread. Ports with one queue per thread (`null:64B`
# has as many as asked; a `gen:` port shares out its flows), so lane k receives queue
# k straight into the NF and sends what the NF gives back on its own transmit queue.
#
#   NFS=1 (default)  one simple_forward: the main switch thread on core 0, the NF on
#                    core 1, the K-1 lanes on cores 2..K (`--rx-cores`); K+1 cores.
#   NFS=K            as many simple_forward instances as threads (`--instances K`,
#                    cores 1..K), the lanes on cores K+1..2K-1; each lane picks every
#                    packet's instance by its flow hash; 2K cores, so only
#                    port-chain1-64B (1024 flows; `null:64B` frames are one flow).
#
# Usage: scripts/bench-scale.sh [ONVM] [--json FILE]
#   ONVM defaults to target/release/onvm (built if missing); MAX (default: as many as
#   the CPUs allow, at most 8), ROUNDS=3, SECS=4, NFS=1,
#   SCENARIOS (default "nullport-chain1-64B port-chain1-64B"; with NFS=K "port-chain1-64B").
# Prints every run, then per scenario and K the median Mpps and its ratio to K=1.
# With MAX above CPUs - 1 the threads share cores and the figures say what that costs
# (on a 2-core VM: MAX=2 puts three pollers on two CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."

onvm=target/release/onvm
if [ $# -gt 0 ] && [ "$1" != --json ]; then onvm=$1; shift; fi
json=""
[ "${1:-}" = "--json" ] && json=${2:?--json needs a file}
[ -x "$onvm" ] || cargo build --release -q -p onvm-cli
cpus=$(nproc)
nfs=${NFS:-1}
case $nfs in
1) fit=$(( cpus - 1 )) default_scenarios="nullport-chain1-64B port-chain1-64B" ;;
K) fit=$(( cpus / 2 )) default_scenarios="port-chain1-64B" ;;
*) echo "bench-scale: NFS is 1 or K, not $nfs" >&2; exit 2 ;;
esac
max=${MAX:-$(( fit < 8 ? fit : 8 ))}
[ "$max" -ge 1 ] || { echo "bench-scale: MAX must be at least 1" >&2; exit 2; }
rounds=${ROUNDS:-3}
secs=${SECS:-4}
read -r -a scenarios <<< "${SCENARIOS:-$default_scenarios}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "bench-scale: $cpus CPUs, K = 1..$max switch threads, NFS=$nfs, $rounds rounds of ${secs}s"
for s in "${scenarios[@]}"; do
    for r in $(seq 1 "$rounds"); do
        for k in $(seq 1 "$max"); do
            pins=()
            if [ "$nfs" = 1 ]; then
                # Lanes on cores 2..K, where the machine has them.
                [ "$k" -gt 1 ] && [ $(( k + 1 )) -le "$cpus" ] && pins=(--rx-cores "$(seq -s, 2 "$k")")
            elif [ $(( 2 * k )) -le "$cpus" ]; then
                pins=(--instances "$k" --nf-cores "$(seq -s, 1 "$k")")
                [ "$k" -gt 1 ] && pins+=(--rx-cores "$(seq -s, $(( k + 1 )) $(( 2 * k - 1 )))")
            else
                pins=(--instances "$k")
            fi
            "$onvm" bench --only "$s" --seconds "$secs" --rx-threads "$k" "${pins[@]}" \
                --json "$out/$s.$k.$r.json" >/dev/null
            printf '%-20s round %d  K=%d  %s Mpps\n' "$s" "$r" "$k" \
                "$(python3 -c 'import json,sys; print(" ".join("%.2f" % x["mpps"] for x in json.load(open(sys.argv[1])) if x["name"]==sys.argv[2]))' "$out/$s.$k.$r.json" "$s")"
        done
    done
done

python3 - "$out" "$max" "$cpus" "$json" "$nfs" "${scenarios[@]}" <<'PY'
import glob, json, statistics, sys
out, kmax, cpus, path, nfs, scenarios = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:]
rows = []
print(f"\n{'scenario':<20} {'K':>2} {'Mpps':>8} {'vs K=1':>7}  (medians; runs)")
for s in scenarios:
    one = None
    for k in range(1, kmax + 1):
        v = [x["mpps"] for f in sorted(glob.glob(f"{out}/{s}.{k}.*.json"))
             for x in json.load(open(f)) if x["name"] == s]
        m = statistics.median(v)
        one = one or m
        rows.append({"scenario": s, "rx_threads": k, "nfs": k if nfs == "K" else 1, "cpus": cpus, "mpps": m, "runs": v,
                     "vs_one": m / one})
        print(f"{s:<20} {k:>2} {m:>8.2f} {m / one:>6.2f}x  {' '.join('%.2f' % x for x in v)}")
if path:
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
PY
