#!/usr/bin/env bash
# make bench: builds the benchmarks and prints their summary tables.
# Every server is on 127.0.0.1; every load is bounded in time and count.
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.bench.json
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), node $(node --version)"
echo
node build/test/bench/refresh.js
