#!/usr/bin/env bash
# Runs every test of onvm-rs, installing what the tests need first.
# Usage: scripts/test.sh            (from anywhere; needs root for hugepages, interfaces and packages)
#
# Every step runs even when an earlier one failed, and every test binary of a step runs
# even when another failed (--no-fail-fast); the script exits non-zero when anything
# failed. Its last line is
#
#     onvm-rs: N passed, N failed, N skipped
#
# passed and failed count tests: the "test result:" lines of every step (unit, property,
# integration and doc tests, the DPDK port, the loom models; the fuzzing step counts
# one failure when any target fails). A step that fails without
# a failing test (a build error, a test binary that crashed) counts as one failure. So
# does a step this script cannot run for want of something in the environment (packages
# that could not be installed, no nightly toolchain, cargo-fuzz that could not be
# installed, no DPDK): only where the environment sets ONVM_ALLOW_SKIP=1 (a developer's
# machine; CI never does) is that step reported with a SKIPPED: line and counted as one
# skipped instead. A test never passes without what it needs: it fails naming the
# missing tool or privilege (crates/onvm-testkit). Only where ONVM_ALLOW_SKIP=1 does
# such a test return early instead; it writes a line to $ONVM_SKIP_LOG, which this
# script sets, and it is counted as skipped, not passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

log() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

work=$(mktemp -d)
dockerd_pid=
cleanup() {
    # dockerd unmounts its containers' file systems when it stops; only then can its
    # data root go.
    if [ -n "$dockerd_pid" ]; then
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$dockerd_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
export ONVM_SKIP_LOG="$work/skipped-tests"
: >"$ONVM_SKIP_LOG"
passed=0
failed=0
skipped=0 # by this script (a step it could not run); skipped tests are added at the end
problems=() # failed steps, for the summary
skips=()    # steps skipped for want of something (ONVM_ALLOW_SKIP=1), for the summary

# step NAME COMMAND...: runs COMMAND, its output shown and counted. A failure is
# recorded, never fatal: the next step runs all the same.
step() {
    local name=$1
    shift
    log "$name"
    "$@" 2>&1 | tee "$work/step"
    local rc=${PIPESTATUS[0]} p f
    read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$work/step")
    if [ "$rc" -ne 0 ]; then
        problems+=("$name: exit status $rc")
        [ "$f" -gt 0 ] || f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

# skip_step NAME REASON: a step that cannot run here. A failure unless ONVM_ALLOW_SKIP=1.
skip_step() {
    if [ "${ONVM_ALLOW_SKIP:-}" = 1 ]; then
        echo "SKIPPED: $1: $2" >&2
        skipped=$((skipped + 1))
        skips+=("$1: $2")
    else
        echo "error: $1: $2" >&2
        problems+=("$1: $2")
        failed=$((failed + 1))
    fi
}

# setup_step NAME COMMAND...: runs COMMAND, which gets what later steps need (installs
# packages or tools), its output shown. Its failure is the environment's, not the code's:
# skip_step (a failure unless ONVM_ALLOW_SKIP=1). Returns COMMAND's success.
setup_step() {
    local name=$1
    shift
    log "$name"
    "$@" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || skip_step "$name" "$* failed (exit status $rc; its output is above)"
    return "$rc"
}

# Packages the tests need: tcpdump, tcpreplay, iproute2, ovs-ofctl, os-ken, libdpdk-dev
# (scripts/deps.sh). Without them the tests that need them fail, and say so.
setup_step "packages" scripts/deps.sh

# Hugepages: the region backs itself with them when enough are free, and the tests
# check that it does (ONVM_EXPECT_HUGEPAGES). Without root we test the fallback only.
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    want=256
    have=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$have" -lt "$want" ]; then
        echo "$want" >/proc/sys/vm/nr_hugepages || true
    fi
    free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
    if [ "${free:-0}" -ge 64 ]; then
        export ONVM_EXPECT_HUGEPAGES=1
    fi
    log "hugepages: $(cat /proc/sys/vm/nr_hugepages) reserved, ${free:-0} free"
else
    log "not root: testing without hugepages (and the tests that need root fail)"
fi

# A private Docker engine for the container NF tests (DOCKER_HOST): its own data and
# exec roots and socket under $work, no bridge and no iptables rules, so it touches
# nothing of the machine's own Docker, if any. Without it the container tests fail,
# naming what is missing (onvm_testkit::require_docker).
start_dockerd() {
    local dk="$work/docker"
    mkdir -p "$dk"
    command -v dockerd >/dev/null || { echo "dockerd is not installed (apt install docker.io)"; return 1; }
    [ "$(id -u)" = 0 ] || { echo "dockerd needs root"; return 1; }
    dockerd --data-root "$dk/data" --exec-root "$dk/exec" --host "unix://$dk/docker.sock" \
        --pidfile "$dk/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
        >"$dk/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 300); do
        if [ -S "$dk/docker.sock" ] && DOCKER_HOST="unix://$dk/docker.sock" docker version >/dev/null 2>&1; then
            export DOCKER_HOST="unix://$dk/docker.sock"
            echo "dockerd $(docker version --format '{{.Server.Version}}') on $DOCKER_HOST"
            return 0
        fi
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "dockerd did not start; the end of its log:"
    tail -n 20 "$dk/dockerd.log"
    return 1
}
setup_step "Docker engine (a private dockerd)" start_dockerd

step "unit, property and integration tests" cargo test --workspace --all-targets --no-fail-fast
# --all-targets leaves out the doc tests.
step "doc tests" cargo test --workspace --doc --no-fail-fast

# The DPDK port, when DPDK's development files are there: its own tests (vdevs
# net_ring, net_null, net_pcap, net_af_packet, net_af_xdp, net_tap) and the namespace
# tests through the manager with net_af_packet and net_af_xdp, and net_null's queues
# split between two switch threads.
if pkg-config --exists libdpdk 2>/dev/null; then
    step "DPDK port (cargo feature dpdk)" cargo test -p onvm-ports --features dpdk --lib --no-fail-fast dpdk
    step "DPDK port through the manager" cargo test -p onvm-cli --features dpdk --test netns_ports --test rx_threads --no-fail-fast dpdk
else
    skip_step "DPDK port" "pkg-config finds no libdpdk: apt install libdpdk-dev (scripts/deps.sh installs it)"
fi

step "loom model checks of the ring and doorbell" \
    env RUSTFLAGS="--cfg loom" cargo test -p onvm-shm --lib --release --no-fail-fast --target-dir target/loom

# Fuzzing: every cargo-fuzz target (OpenFlow, control messages, config file, pcap
# reader) from its corpus in fuzz/corpus/, ONVM_FUZZ_SECONDS (20) each; a crash, hang or
# unbounded allocation fails. libFuzzer needs the nightly toolchain; scripts/fuzz.sh
# --install installs cargo-fuzz when missing (a setup step: a crash is a failure, a
# missing tool is the environment's).
if ! cargo +nightly --version >/dev/null 2>&1; then
    skip_step "fuzzing" "no nightly Rust toolchain (cargo-fuzz needs it): rustup toolchain install nightly"
elif setup_step "cargo-fuzz (scripts/fuzz.sh --install)" scripts/fuzz.sh --install; then
    step "fuzzing (scripts/fuzz.sh)" scripts/fuzz.sh "${ONVM_FUZZ_SECONDS:-20}"
fi

# The closing line (the child processes of the two-process tests print their own result
# lines; they are counted too). A skipped test returned early and libtest counted it as
# passed: it moves from passed to skipped.
skipped_tests=$(grep -c . "$ONVM_SKIP_LOG" || true)
passed=$((passed - skipped_tests))
skipped=$((skipped + skipped_tests))
if [ "$skipped_tests" -gt 0 ]; then
    log "skipped tests (ONVM_ALLOW_SKIP=1)"
    sed 's/^/SKIPPED: /' "$ONVM_SKIP_LOG"
fi
if [ ${#skips[@]} -gt 0 ]; then
    log "skipped steps (ONVM_ALLOW_SKIP=1): what this machine lacks"
    printf 'SKIPPED: %s\n' "${skips[@]}"
fi
if [ ${#problems[@]} -gt 0 ]; then
    log "failed steps"
    printf '%s\n' "${problems[@]}"
fi
printf '\nonvm-rs: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ] && [ ${#problems[@]} -eq 0 ]
