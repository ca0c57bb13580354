#!/usr/bin/env bash
# The main job: run the built-in busybox image as a container and as a VM (the first VM fetches Debian's cloud
# kernel into hull's cache), both on hull's default network; start the daemon (Docker Engine API on
# /run/hull/hull.sock) unless one already serves, and drive it with docker's own CLI; then show what hull sees.
set -euo pipefail
hull run --rm busybox sh -c 'echo "hello from a hull container: $(uname -n), pid $$, $(id -un), $(ip -o -4 addr show eth0 | awk "{print \$4}")"'
hull run --rm --isolation vm busybox sh -c 'echo "hello from a hull VM: kernel $(uname -r), $(nproc) vCPU, $(ip -o -4 addr show eth0 | awk "{print \$4}")"'

sock=/run/hull/hull.sock
export DOCKER_HOST=unix://$sock
if ! /usr/bin/docker version >/dev/null 2>&1; then
  mkdir -p /var/log
  setsid hull daemon --socket "$sock" >>/var/log/hull-daemon.log 2>&1 </dev/null &
  # ready when it answers docker's ping (at most 30 s)
  for _ in $(seq 300); do
    /usr/bin/docker version >/dev/null 2>&1 && break
    sleep 0.1
  done
  /usr/bin/docker version >/dev/null || { echo "hull daemon did not start; see /var/log/hull-daemon.log" >&2; exit 1; }
fi
/usr/bin/docker run --rm busybox sh -c 'echo "hello from docker through hull: $(uname -n)"'
hull system info
echo
echo "hull daemon serves $sock (log: /var/log/hull-daemon.log). Drive it with docker's clients:"
echo "  export DOCKER_HOST=unix://$sock"
