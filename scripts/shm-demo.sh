#!/usr/bin/env bash
# The statemesh demo: one publisher process and two reader processes sharing
# a snapshot through shared memory. No configuration; runs for about 3 s.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p statemesh-shm --examples
bin=target/release/examples
region="statemesh-demo-$$"
"$bin/reader" "$region" "reader-1" &
r1=$!
"$bin/reader" "$region" "reader-2" &
r2=$!
trap 'kill $r1 $r2 2>/dev/null || true; rm -f "/dev/shm/$region" "/dev/shm/$region".buf*' EXIT
"$bin/publisher" "$region" 30
wait "$r1" "$r2"
