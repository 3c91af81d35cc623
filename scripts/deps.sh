#!/usr/bin/env bash
# Installs the Debian packages the tests and the DPDK build need, when missing (root,
# apt). Used by scripts/test.sh and .ci/run; safe to run again.
#   tcpdump, tcpreplay   captures and traffic of the namespace tests
#   iproute2             namespaces and veth pairs
#   libdpdk-dev          the `dpdk` cargo feature (DPDK 22.11 via pkg-config)
#   pkg-config           finds it
#   openvswitch-common   ovs-ofctl, which the OpenFlow codec's interop test asks to
#                        decode what we encode
set -euo pipefail

# command or file that shows the package is there -> package
declare -A NEED=(
    [tcpdump]=tcpdump
    [tcpreplay]=tcpreplay
    [ip]=iproute2
    [pkg-config]=pkg-config
    [/usr/include/dpdk/rte_ethdev.h]=libdpdk-dev
    [ovs-ofctl]=openvswitch-common
)
missing=()
for what in "${!NEED[@]}"; do
    if [[ $what == /* ]]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
    missing+=("${NEED[$what]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "warning: missing ${missing[*]} (install them as root); the tests that need them will be skipped" >&2
    exit 0
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
    echo "warning: could not install ${missing[*]}; the tests that need them will be skipped" >&2
