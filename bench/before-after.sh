#!/usr/bin/env bash
# The hot paths of an earlier revision and of this tree, in one run on this
# machine: commits (criterion), local reads (criterion) and
# commit-to-mirror latency (rounds alternated between the two builds).
#
# Usage: bench/before-after.sh [REV]    (default f3fef0a: the last tree
#                                        before the crates were split)
#
# Criterion runs the earlier build first and saves it as the baseline
# "before"; this tree's run is compared with it and criterion prints the
# change with its confidence interval ("No change in performance
# detected", "Performance has improved", ...). The mirror benchmark has
# no baseline of its own: each build runs it once, back to back, and its
# table shows each figure's range over three rounds, the noise to compare
# the difference against.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-f3fef0a}
here=$(pwd)
work=$(mktemp -d)
before="$work/before"
cleanup() {
    git -C "$here" worktree remove --force "$before" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
fi

git worktree add --quiet --detach "$before" "$rev"
# One target directory for both: the dependencies build once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
export CRITERION_HOME="$work/criterion"

echo "== building $rev and this tree ($(git rev-parse --short HEAD))"
(cd "$before" && cargo bench -p statemesh --no-run --quiet)
cargo bench -p statemesh --no-run --quiet

for bench in commits local; do
    echo
    echo "== $bench: $rev"
    (cd "$before" && cargo bench -p statemesh --bench "$bench" -- --save-baseline before)
    echo
    echo "== $bench: this tree, against $rev"
    cargo bench -p statemesh --bench "$bench" -- --baseline before
done

echo
echo "== mirrors: $rev"
(cd "$before" && cargo bench -p statemesh --bench mirrors)
echo
echo "== mirrors: this tree"
cargo bench -p statemesh --bench mirrors
