#!/usr/bin/env bash
# How fast a controller can program the switch: `ovs-ofctl -O OpenFlow13 add-flows` of N
# rules (one FLOW_MOD each, then a barrier), `dump-flows` of all of them, and `del-flows`,
# against `onvm mgr --openflow-listen` and against Open vSwitch's own userspace switch
# (ovs-vswitchd, a netdev bridge) on the same machine, in interleaved rounds; prints
# rules per second and onvm / OVS for each.
#
#   scripts/bench-openflow.sh [--json FILE]      knobs: FLOWS=20000 ROUNDS=3
#
# Needs root for apt (openvswitch-switch, installed without starting its service).
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${FLOWS:-20000}
ROUNDS=${ROUNDS:-3}
JSON=""
[ "${1:-}" = "--json" ] && JSON=$2

if ! command -v ovs-vswitchd >/dev/null; then
    echo "installing openvswitch-switch (its service is not started)"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
cargo build --release -q -p onvm-cli
ONVM=target/release/onvm

work=$(mktemp -d /tmp/onvm-bench-of.XXXXXX)
cleanup() {
    [ -n "${mgr:-}" ] && kill "$mgr" 2>/dev/null
    for p in "$work"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
    sleep 0.2
    rm -rf "$work"
}
trap cleanup EXIT

# Open vSwitch, userspace only (this kernel loads no modules), in the temp dir.
export OVS_RUNDIR=$work OVS_DBDIR=$work OVS_LOGDIR=$work
ovsdb-tool create "$work/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$work/conf.db" --remote="punix:$work/db.sock" --pidfile="$work/ovsdb.pid" \
    --detach --log-file="$work/ovsdb.log"
ovs-vsctl --db="unix:$work/db.sock" --no-wait init
ovs-vswitchd "unix:$work/db.sock" --pidfile="$work/vswitchd.pid" --detach --log-file="$work/vswitchd.log" 2>/dev/null
OVS_PORT=16701
ovs-vsctl --db="unix:$work/db.sock" add-br br0 -- set bridge br0 datapath_type=netdev \
    protocols=OpenFlow13 -- set-controller br0 "ptcp:$OVS_PORT:127.0.0.1"

ONVM_PORT=16702
$ONVM mgr --socket "$work/onvm.sock" --stats off -p null -p null \
    --openflow-listen "ptcp:$ONVM_PORT:127.0.0.1" >"$work/mgr.out" 2>"$work/mgr.log" &
mgr=$!

ofctl() { ovs-ofctl -O OpenFlow13 --no-names "$@"; }
for t in "$ONVM_PORT" "$OVS_PORT"; do
    for _ in $(seq 50); do ofctl show "tcp:127.0.0.1:$t" >/dev/null 2>&1 && break; sleep 0.1; done
done

# N distinct rules of the shape a chain controller installs.
for k in $(seq 1 "$FLOWS"); do
    echo "priority=100,tcp,in_port=1,tp_dst=$((k % 65535 + 1)),nw_dst=10.$((k / 65535)).0.1,actions=output:2"
done >"$work/flows.txt"

now() { date +%s.%N; }
declare -A best
for what in add dump del; do for sw in onvm ovs; do best[$what-$sw]=0; done; done
rate() { awk -v n="$FLOWS" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", n / (b - a) }'; }
keep() { [ "$2" -gt "${best[$1]}" ] && best[$1]=$2 || true; }

for r in $(seq "$ROUNDS"); do
    for sw in onvm ovs; do
        port=$ONVM_PORT; [ $sw = ovs ] && port=$OVS_PORT
        target="tcp:127.0.0.1:$port"
        ofctl del-flows "$target"
        t0=$(now); ofctl add-flows "$target" "$work/flows.txt"; t1=$(now)
        n=$(ofctl dump-flows "$target" | grep -c cookie=); t2=$(now)
        ofctl del-flows "$target"; t3=$(now)
        [ "$n" = "$FLOWS" ] || { echo "$sw: dump-flows listed $n of $FLOWS rules" >&2; exit 1; }
        add=$(rate "$t0" "$t1"); dump=$(rate "$t1" "$t2"); del=$(rate "$t2" "$t3")
        keep "add-$sw" "$add"; keep "dump-$sw" "$dump"; keep "del-$sw" "$del"
        printf "round %d %-5s add %8d rules/s  dump %8d rules/s  del %9d rules/s\n" "$r" "$sw" "$add" "$dump" "$del"
    done
done

echo
printf "%-6s %12s %12s %8s   (best of %d rounds, %d rules)\n" "" onvm OVS onvm/OVS "$ROUNDS" "$FLOWS"
for what in add dump del; do
    o=${best[$what-onvm]}; v=${best[$what-ovs]}
    printf "%-6s %12d %12d %8s\n" "$what" "$o" "$v" "$(awk -v a="$o" -v b="$v" 'BEGIN { printf "%.2f", a / b }')"
done
if [ -n "$JSON" ]; then
    {
        printf '{"date":"%s","flows":%d,"rounds":%d,"rules_per_s":{' "$(date -u +%F)" "$FLOWS" "$ROUNDS"
        sep=""
        for what in add dump del; do
            printf '%s"%s":{"onvm":%d,"ovs":%d}' "$sep" "$what" "${best[$what-onvm]}" "${best[$what-ovs]}"
            sep=","
        done
        printf '}}\n'
    } >"$JSON"
    echo "wrote $JSON"
fi
