#!/usr/bin/env bash
# make bench-compare BASELINE=<commit>: builds <commit> in a temporary worktree
# (with this checkout's node_modules, so only the code differs) and compares
# ScoreHosts throughput against this build in one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASELINE="${1:?usage: compare.sh COMMIT}"
DIR="$(mktemp -d)/baseline"
trap 'git worktree remove --force "$DIR" >/dev/null 2>&1 || true' EXIT
git worktree add --detach -q "$DIR" "$BASELINE"
ln -s "$PWD/node_modules" "$DIR/node_modules"
(cd "$DIR" && npm run --silent gen >/dev/null && npx tsc -p tsconfig.json)
npx tsc -p tsconfig.bench.json
echo "baseline: $(git rev-parse --short "$BASELINE") $(git log -1 --format=%s "$BASELINE" | cut -c1-80)"
node build/test/bench/compare.js "$DIR/dist/cli.js"
