#!/usr/bin/env bash
# The main job: run the built-in busybox image as a container and as a VM (the first VM fetches Debian's cloud
# kernel into hull's cache), both on hull's default network; start the daemon (Docker Engine API on
# /run/hull/hull.sock, the web console on https://127.0.0.1:8443) unless one already serves, and drive it with
# docker's own CLI; then show what hull sees and print the console's one-time login link.
set -euo pipefail
hull run --rm busybox sh -c 'echo "hello from a hull container: $(uname -n), pid $$, $(id -un), $(ip -o -4 addr show eth0 | awk "{print \$4}")"'
hull run --rm --isolation vm busybox sh -c 'echo "hello from a hull VM: kernel $(uname -r), $(nproc) vCPU, $(ip -o -4 addr show eth0 | awk "{print \$4}")"'

sock=/run/hull/hull.sock
listen=127.0.0.1:8443
export DOCKER_HOST=unix://$sock
if ! /usr/bin/docker version >/dev/null 2>&1; then
  mkdir -p /var/log
  setsid hull daemon --socket "$sock" --listen "$listen" >>/var/log/hull-daemon.log 2>&1 </dev/null &
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
echo
# the console's listener comes up just after the socket (a self-signed certificate is made on the first start)
for _ in $(seq 100); do
  [ -s "${HULL_ROOT:-/var/lib/hull}/daemon/listen" ] && break
  sleep 0.1
done
if link=$(hull console url 2>/dev/null); then
  echo "The web console (self-signed certificate; the link works once, for 5 minutes; 'hull console url' makes another):"
  echo "  $link"
else
  echo "The web console: this daemon has no --listen; restart it with 'hull daemon --listen $listen', then run 'hull console url'."
fi
