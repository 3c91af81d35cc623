#!/usr/bin/env bash
# The port path against DPDK's own forwarder, with ports that cost nothing: DPDK's
# `net_null` (and our `null:64B`, which receives the same way), so what is measured is
# the forwarder's cost per packet, not a NIC's or the kernel's. Same run, rounds
# interleaved:
#
#   testpmd   dpdk-testpmd io forwarding, net_null0 -> net_null1, forwarding lcore 1
#   null      onvm bench nullport-chain1: null:64B -> manager (core 0) -> simple_forward
#             (core 1) -> manager -> null, a real manager with its NF in another thread
#             mapping the region as an NF process does
#   dpdknull  the same scenario with DPDK's net_null ports (`dpdk:` ports, `dpdk` build)
#   nfq       `null` with `--nf-queues`: the NF polls port 0's queue itself and sends
#             out of port 1 (DPDK's ports cannot be polled from an NF process)
#   proc      `onvm mgr` and `onvm nf simple-forward` as two processes, no `--nf-queues`
#   proc-nfq  the same with `--nf-queues`
#
# The `proc` kinds' rate is port 1's transmit pps in the manager's CSV stats (median of
# its 1-second lines after the first two).
# testpmd's rate is its port 0 Rx-pps (median of its 1-second stats after the first
# two); onvm's is what the NF forwarded over the window after a warm-up second. The
# manager's cycles per packet by phase come from a separate profiled run (`--profile`).
#
# Usage (root): scripts/bench-null.sh [--json FILE]     SECS=5 ROUNDS=3,
#   KINDS="testpmd null dpdknull nfq proc proc-nfq"
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
KINDS=${KINDS:-testpmd null dpdknull nfq proc proc-nfq}
JSON=""
[ "${1:-}" = "--json" ] && JSON=${2:?--json needs a file}

. scripts/bench-setup.sh bench-null "hugepages for DPDK"

# One binary for every kind: the dpdk build also has the built-in ports.
cargo build --release -q -p onvm-cli --features dpdk
ONVM=$PWD/target/release/onvm
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The manager and simple_forward as processes (cores 0 and 1, the defaults); $@: more mgr flags.
run_procs() {
    "$ONVM" mgr --config examples/port-path.toml --socket "$WORK/s.sock" --stats csv \
        --run-for $((SECS + 1)) "$@" > "$WORK/mgr.csv" 2> "$WORK/mgr.err" &
    local mgr=$!
    for _ in $(seq 100); do [ -S "$WORK/s.sock" ] && break; sleep 0.05; done
    "$ONVM" nf --socket "$WORK/s.sock" simple-forward > "$WORK/nf.log" 2>&1 &
    wait "$mgr"
    wait || true
    grep -q 'conservation: OK' "$WORK/mgr.csv" || { cat "$WORK/mgr.csv" "$WORK/mgr.err" >&2; exit 1; }
    # Port lines: time,port,rx_pkts,rx_pps,tx_pkts,tx_pps,...: port 1's tx_pps.
    awk -F, '$2 == "1" && NF == 9 { print $6 }' "$WORK/mgr.csv" | tail -n +3 | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)] / 1e6; else print "0" }'
}

run_kind() {
    case $1 in
    testpmd)
        timeout -s INT $((SECS + 3)) dpdk-testpmd -l 0,1 --in-memory --no-pci --no-telemetry --log-level=lib.eal:error \
            --vdev net_null0 --vdev net_null1,no-rx=1 -- \
            --forward-mode=io --nb-cores=1 --stats-period=1 --total-num-mbufs=16384 \
            > "$WORK/testpmd.log" 2>&1 < /dev/null || true
        # Each stats block names its port, then gives Rx-pps: keep port 0's.
        awk '/NIC statistics for port/ { p = $(NF - 1) } /Rx-pps:/ && p == "0" { print $2 }' "$WORK/testpmd.log" |
            tail -n +3 | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)] / 1e6; else print "0" }'
        ;;
    proc) run_procs ;;
    proc-nfq) run_procs --nf-queues ;;
    null | dpdknull | nfq)
        local ports=()
        [ "$1" = dpdknull ] && ports=(--ports dpdk:net_null0 --ports 'dpdk:net_null1,no-rx=1')
        [ "$1" = nfq ] && ports=(--nf-queues)
        "$ONVM" bench --only nullport-chain1-64B --seconds "$SECS" "${ports[@]}" --json "$WORK/b.json" > /dev/null
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))[0]["mpps"])' "$WORK/b.json"
        ;;
    esac
}

declare -A ALL
for round in $(seq "$ROUNDS"); do
    for kind in $KINDS; do
        mpps=$(run_kind "$kind")
        printf 'round %d  %-9s %8s Mpps\n' "$round" "$kind" "$mpps"
        ALL[$kind]="${ALL[$kind]:-}${ALL[$kind]:+ }$mpps"
    done
done

echo
echo "the manager's cycles per packet (one profiled run of each onvm kind):"
for kind in $KINDS; do
    case $kind in
    null) "$ONVM" bench --only nullport-chain1-64B --seconds "$SECS" --profile | grep -A1 '^nullport' ;;
    dpdknull) "$ONVM" bench --only nullport-chain1-64B --seconds "$SECS" --profile \
        --ports dpdk:net_null0 --ports 'dpdk:net_null1,no-rx=1' | grep -A1 '^nullport' | sed 's/^nullport/dpdknull/' ;;
    esac
done

python3 - "$JSON" $KINDS <<PY
import json, statistics, sys
runs = {k: [float(x) for x in v.split()] for k, v in (l.split("=", 1) for l in """$(for k in $KINDS; do echo "$k=${ALL[$k]}"; done)""".splitlines())}
base = statistics.median(runs["testpmd"]) if "testpmd" in runs else None
print(f"\n{'forwarder':<10} {'median Mpps':>12}  {'runs':<28} vs testpmd")
out = []
for k in sys.argv[2:]:
    m = statistics.median(runs[k])
    ratio = m / base if base else None
    print(f"{k:<10} {m:>12.2f}  {' '.join(map(str, runs[k])):<28} {'%.2fx' % ratio if ratio else '-'}")
    out.append({"name": f"null-fwd-64B-{k}", "mpps": m, "runs": runs[k], "vs_testpmd": ratio})
if sys.argv[1]:
    json.dump(out, open(sys.argv[1], "w"), indent=1)
    print("results written to", sys.argv[1])
PY
