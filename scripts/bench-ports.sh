#!/usr/bin/env bash
# 64-byte forwarding between two veths: onvm-rs (AF_XDP ports, then AF_PACKET ports,
# one simple_forward NF between them) against Debian's dpdk-testpmd (io forwarding,
# net_af_xdp on the same veths). Same sender, same run, rounds interleaved (ABCABC...).
#
#   sender (onvm generator -> AF_XDP, core 0) -> s0 == a0 [forwarder, core 1] a1 == d0 (count)
#
# The forwarder gets core 1 in every case: testpmd's forwarding lcore, or the onvm
# manager plus its NF (shared-core mode). The rate is what arrives on d0, read from its
# kernel counters over the measuring window. Everything runs in a network namespace
# the script creates and removes.
#
# Usage (root): scripts/bench-ports.sh [--json FILE]     SECS=5 ROUNDS=3 to change the run,
#   KINDS="testpmd afxdp" to run only some forwarders, NF_CORES=0 to put the NF on the
#   sender's core instead of the forwarder's, SHARED=false for a busy-polling NF (two
#   pollers on one core: 0.48 Mpps, far worse), KEEP=1 to keep the forwarders' logs in
#   /tmp/bench-ports-work, BASE=/path/to/onvm to interleave another build's forwarders
#   (kinds afxdp-base, afpacket-base; the sender is this tree's build in every case).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
JSON=""
[ "${1:-}" = "--json" ] && JSON=${2:?--json needs a file}

. scripts/bench-setup.sh bench-ports "namespaces, XDP"

cargo build --release -q -p onvm-cli
ONVM=$PWD/target/release/onvm
NS=onvmbench-$$
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp -r "$WORK" /tmp/bench-ports-work; rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
nsx sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
nsx ip link set lo up
nsx ip link add s0 type veth peer name a0
nsx ip link add a1 type veth peer name d0
for i in s0 a0 a1 d0; do nsx ip link set "$i" up; done

# The sender: the onvm generator (64 B, 256 flows, unlimited) straight out of an AF_XDP
# port on s0, no NF, manager on core 0.
cat > "$WORK/sender.toml" <<EOF
[manager]
socket = "$WORK/sender.sock"
ports = ["gen:64B,256flows", "afxdp:s0"]
[[chains]]
name = "out"
chain = ["out:1"]
in_port = 0
EOF

forwarder_config() { # PORT-KIND
    cat > "$WORK/fwd.toml" <<EOF
[manager]
socket = "$WORK/fwd.sock"
ports = ["$1:a0", "$1:a1"]
shared_cores = ${SHARED:-true}
[services]
fwd = 1
[[nfs]]
name = "simple_forward"
service = "fwd"
[[chains]]
name = "through"
chain = ["fwd", "out:1"]
in_port = 0
EOF
}

rx() { nsx cat /sys/class/net/d0/statistics/rx_packets; }
tx() { nsx cat /sys/class/net/s0/statistics/tx_packets; }
stat() { nsx cat "/sys/class/net/$1/statistics/$2"; }

# Start the forwarder of one kind in the background; its pid in FWD.
start_forwarder() {
    case $1 in
    testpmd)
        # Not through `nsx`: a backgrounded function is a subshell, and the signal that
        # stops the forwarder must reach the program itself.
        ip netns exec "$NS" dpdk-testpmd -l 0,1 --in-memory --no-pci --no-telemetry --log-level=lib.eal:error \
            --vdev net_af_xdp0,iface=a0 --vdev net_af_xdp1,iface=a1 -- \
            --forward-mode=io --nb-cores=1 --stats-period=10 --total-num-mbufs=16384 \
            > "$WORK/testpmd.log" 2>&1 < /dev/null &
        ;;
    afxdp | afpacket | afxdp-base | afpacket-base)
        forwarder_config "${1%-base}"
        local bin=$ONVM
        [ "$1" = "${1%-base}" ] || bin=$BASE
        ip netns exec "$NS" "$bin" up "$WORK/fwd.toml" --stats off --mgr-core 1 --nf-cores "${NF_CORES:-1}" > "$WORK/fwd.log" 2>&1 &
        ;;
    esac
    FWD=$!
    PIDS+=("$FWD")
    sleep 2
    # On a veth the receive work (XDP, the copy into the socket's memory) runs on the
    # CPU that transmits: the sender's. Moving it to the forwarder's core (threaded NAPI
    # pinned there) was tried: the NAPI thread then time-shares with a busy-polling
    # forwarder and every forwarder collapsed (testpmd 0.17 of 1.5 Mpps offered), so
    # the kernel's default stays.
}

stop_forwarder() {
    kill -INT "$FWD" 2>/dev/null || true
    wait "$FWD" 2>/dev/null || true
}

ip netns exec "$NS" "$ONVM" up "$WORK/sender.toml" --stats off --mgr-core 0 > "$WORK/sender.log" 2>&1 &
SENDER=$!
PIDS+=("$SENDER")
sleep 2

declare -A SUM RUNS ALL OFF
KINDS=${KINDS:-testpmd afxdp afpacket${BASE:+ afxdp-base afpacket-base}}
for round in $(seq "$ROUNDS"); do
    for kind in $KINDS; do
        start_forwarder "$kind"
        sleep 1 # warm-up
        a=$(rx) sa=$(tx) da=$(stat d0 rx_dropped) ta=$(stat a1 tx_dropped)
        t0=$(date +%s.%N)
        sleep "$SECS"
        b=$(rx) sb=$(tx) db=$(stat d0 rx_dropped) tb=$(stat a1 tx_dropped)
        t1=$(date +%s.%N)
        stop_forwarder
        [ -n "${KEEP:-}" ] && cp "$WORK/fwd.log" "$WORK/fwd-$kind-$round.log" 2>/dev/null || true
        mpps=$(awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) / 1e6 }')
        offered=$(awk -v a="$sa" -v b="$sb" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) / 1e6 }')
        printf 'round %d  %-9s %8s Mpps forwarded of %s offered (lost between a1 and d0: %d)\n' \
            "$round" "$kind" "$mpps" "$offered" $(( db - da + tb - ta ))
        SUM[$kind]=$(awk -v s="${SUM[$kind]:-0}" -v m="$mpps" 'BEGIN { print s + m }')
        RUNS[$kind]=$(( ${RUNS[$kind]:-0} + 1 ))
        ALL[$kind]="${ALL[$kind]:-}${ALL[$kind]:+, }$mpps"
        OFF[$kind]="${OFF[$kind]:-}${OFF[$kind]:+, }$offered"
        sleep 1
    done
done

echo
printf '%-13s %10s  %-28s %s\n' "forwarder" "mean Mpps" "runs" "vs testpmd"
base=$(awk -v s="${SUM[testpmd]:-0}" -v n="${RUNS[testpmd]:-1}" 'BEGIN { print s / n }')
json="["
for kind in $KINDS; do
    mean=$(awk -v s="${SUM[$kind]}" -v n="${RUNS[$kind]}" 'BEGIN { printf "%.3f", s / n }')
    ratio=$(awk -v m="$mean" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", m / b; else print "null" }')
    printf '%-13s %10s  %-28s %sx\n' "$kind" "$mean" "${ALL[$kind]}" "${ratio/null/-}"
    json="$json{\"name\":\"fwd-veth-64B-$kind\",\"mpps\":$mean,\"runs\":[${ALL[$kind]}],\"offered\":[${OFF[$kind]}],\"vs_testpmd\":$ratio},"
done
if [ -n "$JSON" ]; then
    echo "${json%,}]" > "$JSON"
    echo "results written to $JSON"
fi
