#!/usr/bin/env bash
# Installs the Debian packages the tests and the DPDK build need, when missing (root,
# apt). Used by scripts/test.sh and .ci/run; safe to run again.
#   tcpdump, tcpreplay   captures and traffic of the namespace tests
#   iproute2             namespaces and veth pairs
#   libdpdk-dev          the `dpdk` cargo feature (DPDK 22.11 via pkg-config)
#   pkg-config           finds it
#   openvswitch-common   ovs-ofctl: the OpenFlow tests program managers with it, and
#                        the codec's interop test has it decode what we encode
#   python3, python3-pip os-ken (PyPI), the controller of the OpenFlow tests
set -euo pipefail

# command or file that shows the package is there -> package
declare -A NEED=(
    [tcpdump]=tcpdump
    [tcpreplay]=tcpreplay
    [ip]=iproute2
    [pkg-config]=pkg-config
    [/usr/include/dpdk/rte_ethdev.h]=libdpdk-dev
    [ovs-ofctl]=openvswitch-common
    [python3]=python3
    [pip3]=python3-pip
)
missing=()
for what in "${!NEED[@]}"; do
    if [[ $what == /* ]]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
    missing+=("${NEED[$what]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "warning: missing ${missing[*]} (install them as root); the tests that need them will be skipped" >&2
    else
        echo "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
            echo "warning: could not install ${missing[*]}; the tests that need them will be skipped" >&2
    fi
fi

# os-ken (PyPI): the controller of the OpenFlow tests and the example app, and the parser
# the codec's interop test uses. Debian 12's Python is "externally managed" (PEP 668), so
# pip needs --break-system-packages there; os-ken is not packaged by Debian.
if command -v python3 >/dev/null && ! python3 -c 'import os_ken' 2>/dev/null; then
    echo "installing os-ken (PyPI)"
    { python3 -m pip install -q os-ken || python3 -m pip install -q --break-system-packages os-ken; } >/dev/null 2>&1 ||
        echo "warning: could not install os-ken; the tests that need it will be skipped" >&2
fi
