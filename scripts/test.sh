#!/usr/bin/env bash
# Type-checks the whole tree, then runs every test with node's test runner, one file at a time (the tests share cgroups and mounts of one host).
# Node 20's runner finds only .js files when given a directory, so directories are expanded to their *.test.ts here.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for a in "${@:-test/}"; do
  if [ -d "$a" ]; then args+=("${a%/}"/*.test.ts); else args+=("$a"); fi
done
echo "type-checking (tsc --noEmit, strict)"
node_modules/.bin/tsc -p tsconfig.json --noEmit
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${args[@]}"
