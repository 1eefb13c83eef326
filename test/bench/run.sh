#!/usr/bin/env bash
# make bench: builds the benchmarks and prints their summary tables.
# BENCH_ONLY (below) runs some parts. Every server is on 127.0.0.1; every load is bounded in time and count.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v h2load >/dev/null 2>&1; then
  echo "installing h2load (Debian package nghttp2-client)..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  # Waits for another apt (a test-deps install, an unattended upgrade) rather than failing on its lock.
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq && $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq nghttp2-client >/dev/null
fi
npx tsc -p tsconfig.bench.json
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), node $(node --version)"
# BENCH_ONLY: a comma-separated subset of per-core, grpc, metrics, xmlrpc, heap, refresh, workers, control-flood (default: all);
# per-core is ScoreHosts throughput and latency against the limit servers, grpc the engine load against the seed's approach,
# heap what a 100,000-VM snapshot costs the garbage collector (in-process, so a noisy machine shows it too).
only=",${BENCH_ONLY:-per-core,grpc,metrics,xmlrpc,heap,refresh,workers,control-flood},"
for part in per-core grpc metrics xmlrpc heap refresh workers control-flood; do
  if [[ "$only" == *",$part,"* ]]; then
    echo
    case "$part" in
      metrics) node build/test/bench/metrics-cost.js ;;
      heap) node --expose-gc build/test/bench/snapshot-heap.js ;;
      *) node "build/test/bench/$part.js" ;;
    esac
  fi
done
