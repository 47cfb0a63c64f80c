#!/usr/bin/env bash
# The hot paths of an earlier revision and of this tree, in one run on this
# machine: commits (criterion), local reads (criterion) and
# commit-to-mirror latency (rounds alternated between the two builds).
#
# Usage: bench/before-after.sh [REV]    (default f3fef0a: the last tree
#                                        before the crates were split)
#
# Criterion runs the builds in the order earlier, this, this, earlier:
# this tree's first run is compared with the earlier build's first (saved
# as baseline "before"), and the earlier build's second run with this
# tree's second (baseline "after"), each change with its confidence
# interval. A real difference shows in both comparisons with opposite
# signs; a difference that only follows the order is the machine. The
# mirror benchmark has
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
# A target directory for each build: sharing one made cargo rebuild the
# other tree's crates at every switch.
target="${CARGO_TARGET_DIR:-$here/target}"
export CRITERION_HOME="$work/criterion"
old() { (cd "$before" && CARGO_TARGET_DIR="$target/before-after" cargo bench -p statemesh "$@"); }
new() { CARGO_TARGET_DIR="$target" cargo bench -p statemesh "$@"; }

echo "== building $rev and this tree ($(git rev-parse --short HEAD))"
old --no-run --quiet
new --no-run --quiet

for bench in commits local; do
    echo
    echo "== $bench: $rev"
    old --bench "$bench" -- --save-baseline before
    echo
    echo "== $bench: this tree, against $rev's first run"
    new --bench "$bench" -- --baseline before
    echo
    echo "== $bench: this tree again"
    new --bench "$bench" -- --save-baseline after
    echo
    echo "== $bench: $rev again, against this tree's second run"
    old --bench "$bench" -- --baseline after
done

echo
echo "== mirrors: $rev"
old --bench mirrors
echo
echo "== mirrors: this tree"
new --bench mirrors
