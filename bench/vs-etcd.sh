#!/usr/bin/env bash
# statemesh against etcd on this machine: a 3-node etcd cluster (Debian's
# etcd-server) and a 3-node statemesh cluster on loopback, both plaintext and
# fsyncing every commit, driven one after the other by the same harness
# (bench/etcd-harness: etcd's published workload, 8-byte keys, 256-byte
# values, 1 and 256 clients, writes to the leader, then linearizable and
# serializable reads). Prints one table. Usage: bench/vs-etcd.sh [SECONDS ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rounds="${2:-3}"

if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 \
    || ! command -v protoc >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq etcd-server etcd-client protobuf-compiler >/dev/null
fi

cargo build --release --quiet -p statemesh-cli
cargo build --release --quiet --manifest-path bench/etcd-harness/Cargo.toml

# Both clusters keep their data on the same disk (not a tmpfs, so fsync
# costs what it costs).
root="$PWD/target/vs-etcd"
rm -rf "$root"
mkdir -p "$root"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
for i in 1 2 3; do
    ETCD_UNSUPPORTED_ARCH="${ETCD_UNSUPPORTED_ARCH:-}" etcd --name "e$i" \
        --data-dir "$root/e$i" \
        --listen-client-urls "http://127.0.0.1:2379$i" \
        --advertise-client-urls "http://127.0.0.1:2379$i" \
        --listen-peer-urls "http://127.0.0.1:2380$i" \
        --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --initial-cluster-token vs-statemesh \
        >"$root/e$i.log" 2>&1 &
    pids+=($!)
done

secret="vs-etcd-secret"
bin=target/release/statemesh
start_node() { # name port [join]
    local extra=()
    [ -n "${3:-}" ] && extra=(--join "$3")
    "$bin" node --plaintext --secret "$secret" --data-dir "$root/$1" \
        --listen "127.0.0.1:$2" "${extra[@]}" >"$root/$1.log" 2>&1 &
    pids+=($!)
}
start_node s1 7501
sleep 1
start_node s2 7502 127.0.0.1:7501
start_node s3 7503 127.0.0.1:7501

# Until etcd answers and statemesh's cluster group has three voters.
for _ in $(seq 1 150); do
    etcd_ok=$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23791 endpoint health 2>&1 | grep -c "is healthy" || true)
    voters=$("$bin" status --plaintext --token "$secret" --addr 127.0.0.1:7501 2>/dev/null \
        | awk '$1=="_cluster"{print $7}')
    if [ "$etcd_ok" -ge 1 ] && [ "$(echo "$voters" | tr ',' '\n' | grep -c .)" -eq 3 ]; then
        break
    fi
    sleep 0.2
done

bench/etcd-harness/target/release/etcd-harness \
    "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793" \
    "127.0.0.1:7501,127.0.0.1:7502,127.0.0.1:7503" \
    "$secret" "$seconds" "$rounds"
