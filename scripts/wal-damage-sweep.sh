#!/usr/bin/env bash
# The larger statemesh-wal damage sweep, on real files: a log of ENTRIES
# entries (default 300) in 16 KiB segments, for two batch sizes; every
# STRIDE-th bit of every file flipped and every STRIDE-th length of every
# file cut (default 1: all of them), each damaged copy opened. Every open
# must fail with a typed error and leave the files byte-identical, or hold
# every entry, the newest vote, and nothing acknowledged missing
# (crates/statemesh-wal/FORMAT.md, "What each kind of damage produces").
#
#   scripts/wal-damage-sweep.sh [ENTRIES] [STRIDE]
#
# At the defaults it runs about a million opens: tens of minutes on two
# cores. The small in-memory sweep runs in the test suite
# (crates/statemesh-wal/tests/damage.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export STATEMESH_WAL_SWEEP_ENTRIES="${1:-300}"
export STATEMESH_WAL_SWEEP_STRIDE="${2:-1}"
exec cargo test --release -p statemesh-wal --test damage -- \
    --ignored --exact large_sweep_on_files --nocapture
