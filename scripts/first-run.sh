#!/usr/bin/env bash
# The main job for now: run the built-in busybox image as a container and as a VM (the first VM fetches
# Debian's cloud kernel into hull's cache), both on hull's default network, then show what hull sees.
set -euo pipefail
hull run --rm busybox sh -c 'echo "hello from a hull container: $(uname -n), pid $$, $(id -un), $(ip -o -4 addr show eth0 | awk "{print \$4}")"'
hull run --rm --isolation vm busybox sh -c 'echo "hello from a hull VM: kernel $(uname -r), $(nproc) vCPU, $(ip -o -4 addr show eth0 | awk "{print \$4}")"'
hull system info
