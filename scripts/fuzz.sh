#!/usr/bin/env bash
# Runs every cargo-fuzz target of onvm-rs for a bounded time, from its seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET [NAME...]]   (default 20 s, every target;
#        scripts/test.sh runs it)
#        scripts/fuzz.sh --install   (only checks for nightly and installs cargo-fuzz;
#        scripts/test.sh runs it first, so that it can tell a missing tool from a crash)
#
# Targets (libFuzzer, nightly Rust; corpus in fuzz/corpus/<name>/, committed):
#   openflow  crates/onvm-openflow/fuzz  decode  OpenFlow 1.3 decode + re-encode
#   ctrl      fuzz                       ctrl    NfMsg/MgrMsg decode + round trip
#   config    fuzz                       config  Config::from_toml on any UTF-8
#   pcap      fuzz                       pcap    the pcap: port opening and replaying any file
#
# Installs cargo-fuzz (the version pinned below, cargo install --locked, ~1.5 min) only
# when `cargo fuzz` does not run; one already installed is used as it is. Each target runs
# against a copy of its corpus in a temporary directory (the repo is not written), with
# libFuzzer's limits on time per input, RSS and single allocations: a crash, a failed
# assertion, a hang or an unbounded allocation fails the run. The input that did it is
# kept under target/fuzz-artifacts/<name>/ and its path printed, with the command that
# replays it. Exits non-zero when any target failed, or when the nightly toolchain or
# cargo-fuzz is missing and cannot be had (scripts/test.sh finds that out with --install
# first and counts it as a failure, or as skipped where ONVM_ALLOW_SKIP=1).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

# The cargo-fuzz that is installed when there is none: the one these targets were last
# run with (a newer one may change flags or the corpus layout).
CARGO_FUZZ_VERSION=0.13.2

install_only=false
if [ "${1:-}" = --install ]; then
    install_only=true
    shift
fi
secs=${1:-20}
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET [NAME...]]" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))
only=" $* "

die() {
    echo "error: scripts/fuzz.sh: $*" >&2
    exit 1
}

# cargo-fuzz builds with -Zsanitizer=address: nightly only.
cargo +nightly --version >/dev/null 2>&1 ||
    die "no nightly Rust toolchain (cargo-fuzz needs it): rustup toolchain install nightly"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked ||
        die "could not install cargo-fuzz $CARGO_FUZZ_VERSION"
fi
echo "using $(cargo fuzz --version)"
$install_only && exit 0

# name fuzz-dir target
targets=(
    "openflow crates/onvm-openflow/fuzz decode"
    "ctrl fuzz ctrl"
    "config fuzz config"
    "pcap fuzz pcap"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The pcap target writes its input to a file under $TMPDIR.
export TMPDIR=$work
# Both fuzz workspaces share one target directory: libFuzzer is built once.
target_dir=$root/target/fuzz
artifacts=$root/target/fuzz-artifacts

failed=()
for t in "${targets[@]}"; do
    read -r name dir target <<<"$t"
    [ "$only" = "  " ] || [[ $only == *" $name "* ]] || continue
    printf '\n== fuzz %s (%s, %s s)\n' "$name" "$dir/fuzz_targets/$target.rs" "$secs"
    corpus=$work/corpus/$name
    mkdir -p "$corpus" "$artifacts/$name"
    cp -r "fuzz/corpus/$name/." "$corpus/"
    rm -f "$artifacts/$name"/*
    cargo +nightly fuzz run --fuzz-dir "$dir" --target-dir "$target_dir" "$target" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -artifact_prefix="$artifacts/$name/" -print_final_stats=1 2>&1 |
        grep -v -E '^(#[0-9]+\s+(NEW|REDUCE|pulse)|\s+NEW_FUNC|"|###### )' # libFuzzer's progress: thousands of lines
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        failed+=("$name")
        echo "FAILED: fuzz target $name (exit status $rc)" >&2
        for f in "$artifacts/$name"/*; do
            [ -e "$f" ] || continue
            echo "  input: $f ($(wc -c <"$f") bytes): $(head -c 256 "$f" | od -An -tx1 | tr -d '\n' | tr -s ' ')" >&2
            echo "  replay: cargo +nightly fuzz run --fuzz-dir $dir --target-dir target/fuzz $target $f" >&2
        done
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: no crash (${secs} s per target)"
