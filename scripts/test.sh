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

# Packages the tests need: tcpdump, tcpreplay, iproute2, libdpdk-dev (scripts/deps.sh).
log "packages"
scripts/deps.sh

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

# The DPDK port, when DPDK's development files are there: its own tests (vdevs
# net_ring, net_null, net_pcap, net_af_packet, net_af_xdp, net_tap) and the namespace
# tests through the manager with net_af_packet and net_af_xdp.
if pkg-config --exists libdpdk 2>/dev/null; then
    log "DPDK port (cargo feature dpdk)"
    cargo test -p onvm-ports --features dpdk --lib dpdk 2>&1 | tee -a "$out"
    cargo test -p onvm-cli --features dpdk --test netns_ports dpdk 2>&1 | tee -a "$out"
else
    echo "warning: no libdpdk-dev; the DPDK port is not tested" >&2
fi

log "loom model checks of the ring and doorbell"
RUSTFLAGS="--cfg loom" cargo test -p onvm-shm --lib --release --target-dir target/loom 2>&1 | tee -a "$out"

# One closing line for the whole run (the child processes of the two-process tests
# print their own result lines; they are counted too).
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nonvm-rs: %d passed, %d failed\n", p, f }' "$out"
