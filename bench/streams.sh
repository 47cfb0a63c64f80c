#!/usr/bin/env bash
# Streams through statemesh's mesh against NATS core pub/sub and Redis
# pub/sub on this machine, in one run (bench/streams-harness): item sizes
# 64 B and 4 KiB; 1 producer to 1, 10 and 100 consumers, and 10 producers
# to 1 consumer. For each cell and system:
#  - throughput: items delivered per second, counted at the consumers and
#    summed over them (fan-out to 100 counts each of the 100 deliveries),
#    while the producers publish as fast as their system takes items
#    (statemesh: the producer's Sink, i.e. Producer::send, which waits, up
#    to the producer's patience of 1 s, while a consumer has not been sent
#    the oldest buffered item; NATS: Client::publish, which waits when the
#    client's queue is full; Redis: PUBLISH pipelined 64 at a time, each
#    batch waiting for its replies). NATS and Redis do not slow a producer
#    down to its slowest consumer, so deliveries owed and never made are
#    counted for every system (from sequence numbers in the items) and
#    printed, with each system's own signals: statemesh's Lagged, NATS's
#    slow-consumer events and reconnects, Redis's dropped subscribers
#    (each resubscribes at once). statemesh's producers use the defaults
#    (a buffer of 1,024 items; a consumer left behind past the patience
#    is disconnected and resubscribes);
#  - latency: p50 and p99 from publish to delivery, publishing at a fixed
#    rate, the same for all three and well under the slowest one's
#    throughput in the cell (40,000 deliveries/s of 64 B, 20,000 of 4 KiB,
#    divided by the consumers; the table prints the items/s), in bursts
#    each millisecond (the timer's tick).
# Fairness: every producer and every consumer has its own connection in
# all three systems (statemesh: each consumer is its own peer, a Mesh
# joined with the first producer's address as seed, since the consumers of
# one Mesh share its link to a producer; plaintext; passes from a cluster
# secret; default gossip timing). The same item bytes: a 24-byte header
# (producer, phase, sequence number, send time from CLOCK_MONOTONIC) and
# zeros. The producers run in the harness's process, the consumers in
# processes of their own (25 at most to a process: a hundred statemesh
# peers, each with a gossip connection to nearly every other, would pass
# the open-file limit in one), each process on the same tokio runtime
# (multi-threaded, a worker per core). statemesh has no server: the
# producer's peer fans out, in the harness's process; NATS and Redis are
# Debian's nats-server and redis-server with their default limits
# (persistence off for Redis), each started here on a free loopback port.
# Each measurement starts with 1 s of warm-up that is not counted; the
# systems take turns within each round, and the table shows the median
# and the min-max over the rounds (the machine is noisy).
#
# Usage: bench/streams.sh [SECONDS ROUNDS] (defaults 3 and 3: about 11
# minutes; 2 and 3: about 8). STREAMS_SYSTEMS=statemesh,nats and STREAMS_CELLS=64:1:100
# (size:producers:consumers, comma-separated) narrow the run;
# STREAMS_LOG=statemesh_mesh=debug logs the mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3}"
rounds="${2:-3}"

if ! command -v nats-server >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq nats-server redis-server >/dev/null
fi
# The packages may start services on the default ports; the benchmark
# starts its own servers on free ports and does not need them.
PATH="$PATH:/usr/sbin"

cargo build --release --quiet --manifest-path bench/streams-harness/Cargo.toml

root="$PWD/target/streams"
rm -rf "$root"
mkdir -p "$root"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# A loopback port nothing listens on (the kernel's ephemeral range is
# avoided, so a client's port does not take it meanwhile).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}
nats_port=$(free_port)
redis_port=$(free_port)
while [ "$redis_port" = "$nats_port" ]; do redis_port=$(free_port); done

nats-server -a 127.0.0.1 -p "$nats_port" >"$root/nats.log" 2>&1 &
pids+=($!)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --daemonize no >"$root/redis.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null \
        && (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then
        break
    fi
    sleep 0.1
done

bench/streams-harness/target/release/streams-harness \
    "nats://127.0.0.1:$nats_port" "redis://127.0.0.1:$redis_port/" \
    "$seconds" "$rounds"
