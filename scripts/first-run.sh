#!/usr/bin/env bash
# The main job for now: run a first container from the built-in busybox image, then show what hull sees.
set -euo pipefail
hull run --rm busybox sh -c 'echo "hello from a hull container: $(uname -n), pid $$, $(id -un)"'
hull system info
