#!/usr/bin/env bash
# Runs every test with node's test runner, one file at a time (the tests share cgroups and mounts of one host).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${@:-test/}"
