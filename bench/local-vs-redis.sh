#!/usr/bin/env bash
# Reads of a locally published statemesh map against GETs of the same key
# from a redis-server on loopback (Debian's package), in one criterion run.
# Prints criterion's output and a summary table. Usage: bench/local-vs-redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
fi
# The package starts a service on the default port; the benchmark starts
# its own server on a free port and does not need it.
exec cargo bench -p statemesh --bench local "$@"
