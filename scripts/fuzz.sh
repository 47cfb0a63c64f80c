#!/usr/bin/env bash
# Long fuzzing runs: every fuzz target of every crate (the `fuzz` test of
# statemesh-wal, -shm, -cache, -client, -mesh and statemesh), each for SECONDS
# (default 600), one at a time, printing how many inputs each ran. CI runs
# the same targets for one second each as part of `cargo test`.
#
# Usage: scripts/fuzz.sh [SECONDS] [CRATE...]
#   scripts/fuzz.sh              # every target, 10 minutes each
#   scripts/fuzz.sh 60 statemesh-wal
#
# The test profile (optimised, with overflow checks and debug assertions)
# is used: a release build would miss the overflows a fuzzer is for.
#
# A failure prints the input and bolero's BOLERO_RANDOM_SEED, which
# replays it; keep the input as a regression test beside its target.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-600}
shift || true
crates=("$@")
if [ ${#crates[@]} -eq 0 ]; then
    crates=(statemesh-wal statemesh-shm statemesh-cache statemesh-client statemesh-mesh statemesh)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for crate in "${crates[@]}"; do
    if [ ! -f "crates/$crate/tests/fuzz.rs" ]; then
        echo "fuzz: $crate has no tests/fuzz.rs" >&2
        exit 2
    fi
    echo "fuzz: $crate, ${secs} s per target"
    STATEMESH_FUZZ_SECS=$secs cargo test -p "$crate" --all-features --test fuzz \
        -- --test-threads=1 --nocapture 2>&1 | tee -a "$log" | grep -E '^fuzz |test result|panicked'
done
echo
echo "inputs per target:"
grep -E '^fuzz ' "$log" | sed 's/^fuzz /  /'
