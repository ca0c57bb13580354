#!/usr/bin/env bash
# Runs hull's tests with node's test runner.
#   scripts/test.sh            type-check, lint, the unit tier (test/unit, with coverage), then every other test
#   scripts/test.sh --unit     the unit tier only: no root, no runtime, seconds (npm run test:unit)
#   scripts/test.sh FILE|DIR…  type-check, then the named tests
# The tests outside test/unit run one file at a time (they share cgroups and mounts of one host).
# Node 20's runner finds only .js files when given a directory, so directories are expanded to their *.test.ts here.
set -euo pipefail
cd "$(dirname "$0")/.."

unit() {
  echo "unit tier (test/unit, coverage of what it loads)"
  node --import tsx --test --experimental-test-coverage --test-reporter=spec test/unit/*.test.ts
}

if [ "${1:-}" = "--unit" ]; then
  unit
  exit
fi

echo "type-checking (tsc --noEmit, strict)"
node_modules/.bin/tsc -p tsconfig.json --noEmit
echo "type-checking the web console (web/tsconfig.json: the DOM's types, Preact's JSX)"
node_modules/.bin/tsc -p web/tsconfig.json --noEmit

if [ $# -eq 0 ]; then
  echo "linting (biome lint; errors fail)"
  node_modules/.bin/biome lint
  echo "format check (biome format; npm run format fixes it)"
  node_modules/.bin/biome format
  unit
fi

args=()
for a in "${@:-test/}"; do
  if [ -d "$a" ]; then args+=("${a%/}"/*.test.ts); else args+=("$a"); fi
done
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${args[@]}"
