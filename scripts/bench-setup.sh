# Sourced by the benchmark scripts that run dpdk-testpmd beside onvm: root, the test
# packages (scripts/deps.sh) and dpdk-testpmd (Debian's dpdk-dev), or an exit saying
# what is missing. $1: the script's name, $2: what it needs root for.
[ "$(id -u)" = 0 ] || { echo "$1: needs root ($2)" >&2; exit 1; }
scripts/deps.sh
command -v dpdk-testpmd >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpdk-dev >/dev/null 2>&1 ||
    { echo "$1: needs dpdk-testpmd (apt-get install dpdk-dev)" >&2; exit 1; }
# dpdk-testpmd's EAL needs hugepages (our region falls back to normal pages, DPDK's
# does not): reserve as many as scripts/test.sh does, if fewer are.
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 256 ]; then
    echo 256 >/proc/sys/vm/nr_hugepages ||
        { echo "$1: cannot reserve hugepages for dpdk-testpmd" >&2; exit 1; }
fi
