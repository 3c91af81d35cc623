#!/usr/bin/env bash
# Installs the Debian packages the tests and the DPDK build need, when missing (root,
# apt). Used by scripts/test.sh and .ci/run; safe to run again. Exits non-zero, saying
# what is missing and why, when anything cannot be installed: the tests fail without it.
#   tcpdump, tcpreplay   captures and traffic of the namespace tests
#   iproute2             namespaces and veth pairs
#   libdpdk-dev          the `dpdk` cargo feature (DPDK 22.11 via pkg-config)
#   pkg-config           finds it
#   openvswitch-common   ovs-ofctl: the OpenFlow tests program managers with it, and
#                        the codec's interop test has it decode what we encode
#   openvswitch-switch   ovsdb-server, ovs-vswitchd, ovs-vsctl: the userspace switch the
#                        os-ken interop test runs beside a manager, with its own database
#                        and sockets in a temp folder (tests/interop_osken_ovs.rs); a
#                        system instance the package may start is not used
#   openvswitch-testcontroller  ovs-testcontroller: the MAC-learning controller of the
#                        interop test (tests/interop_testcontroller.rs)
#   iputils-ping         ping: that test's hosts ping each other through the manager
#   python3, python3-pip os-ken (PyPI), the controller of the OpenFlow tests
#   docker.io            dockerd (and the docker client) for the container NF tests;
#                        scripts/test.sh starts a private dockerd
#   binutils             strip: `onvm image build` strips debug info from NF binaries
#   prometheus           promtool lints the manager's /metrics, and a Prometheus server
#                        (started by the test, its data in a temp folder) scrapes it
#   tmux                 `onvm top` is tested in a tmux pane
#   chromium             the web console's test loads the page in headless Chromium
set -euo pipefail

die() {
    echo "error: scripts/deps.sh: $*" >&2
    exit 1
}

# command or file that shows the package is there -> package
declare -A NEED=(
    [tcpdump]=tcpdump
    [tcpreplay]=tcpreplay
    [ip]=iproute2
    [pkg-config]=pkg-config
    [/usr/include/dpdk/rte_ethdev.h]=libdpdk-dev
    [ovs-ofctl]=openvswitch-common
    [ovs-vswitchd]=openvswitch-switch
    [ovs-testcontroller]=openvswitch-testcontroller
    [ping]=iputils-ping
    [python3]=python3
    [pip3]=python3-pip
    [dockerd]=docker.io
    [strip]=binutils
    [promtool]=prometheus
    [prometheus]=prometheus
    [chromium]=chromium
    [tmux]=tmux
)
have() {
    if [[ $1 == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null; fi
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

missing=()
for what in "${!NEED[@]}"; do
    have "$what" || missing+=("${NEED[$what]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run this script as root to install them"
    command -v apt-get >/dev/null || die "missing ${missing[*]}, and there is no apt-get to install them with"
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be stale or absent (a fresh container): update once and retry.
    if ! apt-get install -y -q "${missing[@]}" >"$log" 2>&1; then
        if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >>"$log" 2>&1; then
            tail -n 20 "$log" >&2
            die "could not install ${missing[*]} (the end of apt-get's output is above)"
        fi
    fi
    for what in "${!NEED[@]}"; do
        have "$what" || die "$what is still missing after installing ${NEED[$what]}"
    done
fi

# os-ken (PyPI): the controller of the OpenFlow tests and the example app, and the parser
# the codec's interop test uses. Debian 12's Python is "externally managed" (PEP 668), so
# pip needs --break-system-packages there; os-ken is not packaged by Debian.
if ! python3 -c 'import os_ken' 2>/dev/null; then
    echo "installing os-ken (PyPI)"
    if ! { python3 -m pip install -q os-ken || python3 -m pip install -q --break-system-packages os-ken; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "could not install os-ken with pip (the end of its output is above)"
    fi
    python3 -c 'import os_ken' || die "os-ken was installed but python3 cannot import it"
fi
