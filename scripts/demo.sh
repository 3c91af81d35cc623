#!/usr/bin/env bash
# Builds onvm-rs and runs the demo: a generator feeds a two-NF chain (basic_monitor ->
# simple_forward, each its own process) and packets leave into a pcap file; live stats
# every second, then a summary whose `conservation:` line says whether every packet is
# accounted for. Needs no hugepages and no NIC. Extra arguments go to `onvm demo`
# (e.g. --seconds 10).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi
# Cargo shows its progress: the first build compiles a few hundred crates (minutes on
# two cores); later ones take seconds.
echo "demo.sh: building onvm (cargo build --release -p onvm-cli)" >&2
cargo build --release -p onvm-cli
exec target/release/onvm demo "$@"
