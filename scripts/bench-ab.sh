#!/usr/bin/env bash
# A/B the platform benchmark between two `onvm` builds, interleaved (A B A B ...), so
# both see the same machine: this VM's inter-core latency switches between modes, and
# a single before/after pair can differ by 2x for that reason alone.
#
# Usage: scripts/bench-ab.sh BASE_ONVM NEW_ONVM [ROUNDS] [SCENARIO ...]
#   e.g. scripts/bench-ab.sh /tmp/base/onvm target/release/onvm 3 self-loop-64B chain2-64B port-chain1-64B
# Prints every run, then per scenario the median of each build and new/base.
# BASE_ARGS and NEW_ARGS add `onvm bench` flags to each side: one build against itself
# with a feature on, e.g. the HTTP endpoint scraped every second:
#   NEW_ARGS=--http scripts/bench-ab.sh target/release/onvm target/release/onvm 5
set -euo pipefail
base=${1:?base onvm binary}
new=${2:?new onvm binary}
rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(self-loop-64B chain2-64B port-chain1-64B)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for s in "${scenarios[@]}"; do
    for r in $(seq 1 "$rounds"); do
        for build in base new; do
            bin=$base extra=${BASE_ARGS:-}
            [ "$build" = new ] && bin=$new extra=${NEW_ARGS:-}
            # shellcheck disable=SC2086 # extra holds separate flags
            "$bin" bench --only "$s" $extra --json "$out/$s.$build.$r.json" >/dev/null
            printf '%-18s round %d %-4s %s\n' "$s" "$r" "$build" \
                "$(python3 -c 'import json,sys; print(" ".join("%.2f" % x["mpps"] for x in json.load(open(sys.argv[1])) if x["name"]==sys.argv[2]))' "$out/$s.$build.$r.json" "$s")"
        done
    done
done

python3 - "$out" "${scenarios[@]}" <<'PY'
import glob, json, statistics, sys
out, scenarios = sys.argv[1], sys.argv[2:]
print(f"\n{'scenario':<18} {'base Mpps':>10} {'new Mpps':>10} {'new/base':>9}  (medians)")
for s in scenarios:
    med = {}
    for build in ("base", "new"):
        v = [x["mpps"] for f in glob.glob(f"{out}/{s}.{build}.*.json")
             for x in json.load(open(f)) if x["name"] == s]
        med[build] = statistics.median(v)
    print(f"{s:<18} {med['base']:>10.2f} {med['new']:>10.2f} {med['new']/med['base']:>8.3f}x")
PY
