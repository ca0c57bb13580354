#!/usr/bin/env bash
# Runs every test with node's test runner, one file at a time (the tests share cgroups and mounts of one host).
# Node 20's runner finds only .js files when given a directory, so directories are expanded to their *.test.ts here.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for a in "${@:-test/}"; do
  if [ -d "$a" ]; then args+=("${a%/}"/*.test.ts); else args+=("$a"); fi
done
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${args[@]}"
