#!/usr/bin/env bash
# Runs every test of onvm-rs, installing what the tests need first.
# Usage: scripts/test.sh            (from anywhere; needs root for hugepages and packages)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

# tcpdump reads the pcap files the tests write and captures in the namespace tests;
# tcpreplay sends their traffic (the tests that need them say so and skip without).
for pkg in tcpdump tcpreplay; do
    if ! command -v "$pkg" >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing $pkg"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1; } ||
            echo "warning: could not install $pkg; the tests that need it will be skipped" >&2
    fi
done

# Hugepages: the region backs itself with them when enough are free, and the tests
# check that it does (ONVM_EXPECT_HUGEPAGES). Without root we test the fallback only.
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    want=256
    have=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$have" -lt "$want" ]; then
        echo "$want" > /proc/sys/vm/nr_hugepages || true
    fi
    free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
    if [ "${free:-0}" -ge 64 ]; then
        export ONVM_EXPECT_HUGEPAGES=1
    fi
    log "hugepages: $(cat /proc/sys/vm/nr_hugepages) reserved, ${free:-0} free"
else
    log "not root: testing without hugepages"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

log "unit, property and integration tests"
cargo test --workspace --all-targets 2>&1 | tee -a "$out"

log "loom model checks of the ring and doorbell"
RUSTFLAGS="--cfg loom" cargo test -p onvm-shm --lib --release --target-dir target/loom 2>&1 | tee -a "$out"

# One closing line for the whole run (the child processes of the two-process tests
# print their own result lines; they are counted too).
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nonvm-rs: %d passed, %d failed\n", p, f }' "$out"
