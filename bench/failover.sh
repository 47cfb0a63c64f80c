#!/usr/bin/env bash
# Failover of statemesh against etcd on this machine: for a 3-node cluster
# of each (Debian's etcd-server; both plaintext and fsyncing every commit),
# the time from a fault on the leader to the next acknowledged write, under
# a load of 4 writers whose clients know all three members, over TRIALS
# trials per fault: SIGKILL (then a restart from the data directory),
# SIGSTOP (then SIGCONT), and a partition that cuts the leader off from its
# peers while it runs. One harness (bench/etcd-harness, mode `failover`)
# drives both and prints one table. Needs root.
# Usage: bench/failover.sh [TRIALS]   (FAULTS=statemesh:kill,etcd:stop,... to pick)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}"
faults="${FAULTS:-statemesh:kill,statemesh:stop,statemesh:isolate,etcd:kill,etcd:stop,etcd:isolate}"

if [ "$(id -u)" -ne 0 ]; then
    echo "failover.sh needs root: it makes network namespaces and iptables rules" >&2
    exit 1
fi
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 \
    || ! command -v protoc >/dev/null 2>&1 || ! command -v iptables-restore >/dev/null 2>&1 \
    || ! command -v ip >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq etcd-server etcd-client protobuf-compiler iptables iproute2 >/dev/null
fi

cargo build --release --quiet -p statemesh-cli
cargo build --release --quiet --manifest-path bench/etcd-harness/Cargo.toml

# Each node runs in a network namespace of its own, joined to the others
# and to this one by a bridge: a partition is then a real loss of packets
# (iptables in the leader's namespace), and the load, on the bridge's own
# address, still reaches every node. Loopback aliases cannot do this: all
# their traffic has the same source address, clients' and peers' alike.
# SIGKILL and SIGSTOP trials run on the same network, so the three faults
# compare.
net=10.77.0
bridge=fo-br
names=(fo-n1 fo-n2 fo-n3)
root="$PWD/target/failover"

bridge_filtered() {
    [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]
}

cleanup() {
    # Processes first (SIGCONT too: a stopped one must not outlive its
    # namespace), then the veths (deleting a namespace frees its end of one
    # only later), the namespaces and the bridge; each may be gone already.
    for ns in "${names[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            kill -CONT "$p" 2>/dev/null || true
            kill -KILL "$p" 2>/dev/null || true
        done
    done
    for i in 1 2 3; do ip link del "fo-v$i" 2>/dev/null || true; done
    for ns in "${names[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    if bridge_filtered; then
        iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
    fi
}
# What an earlier run left, if it was killed before its trap ran.
cleanup
trap cleanup EXIT

if [ -n "$(ip route show to match "$net.1" | grep -v "^default")" ]; then
    echo "$net.0/24 is in use on this machine; change net= in $0" >&2
    exit 1
fi
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
# With br_netfilter loaded (Docker hosts), bridged packets go through this
# namespace's FORWARD chain, whose policy may drop them.
if bridge_filtered; then
    iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
fi
nodes=()
for i in 1 2 3; do
    ns="${names[$((i - 1))]}"
    ip netns add "$ns"
    ip link add "fo-v$i" type veth peer name eth0 netns "$ns"
    ip link set "fo-v$i" master "$bridge" up
    ip -n "$ns" addr add "$net.1$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    nodes+=("$ns=$net.1$i")
done

# Data on the same disk as the project (not a tmpfs, so fsync costs what it
# costs).
rm -rf "$root"
mkdir -p "$root"
bench/etcd-harness/target/release/etcd-harness failover "$trials" "$root" \
    "$PWD/target/release/statemesh" "$(IFS=,; echo "${nodes[*]}")" "$faults"
