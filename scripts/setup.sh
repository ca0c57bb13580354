#!/usr/bin/env bash
# One-time (and idempotent) set-up of a Debian host for hull: host packages, npm dependencies, the build,
# and a `hull` command on PATH. Safe to run again; it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(runc crun conmon tini busybox-static util-linux iproute2 procps attr uidmap docker-registry skopeo zstd
  qemu-system-x86 qemu-utils e2fsprogs erofs-utils kmod musl-tools
  containernetworking-plugins aardvark-dns iptables iperf3 mmdebstrap docker.io docker-compose
  chromium tigervnc-standalone-server btrfs-progs xfsprogs ovmf fio openssl
  genisoimage extlinux syslinux-common mtools dosfstools fdisk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "hull setup: installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker.io is here for its CLI (and docker-compose), the clients that drive `hull daemon`: when this set-up
  # installs it, its dockerd must not start (its bridge and iptables rules would sit beside hull's), so packages
  # may not start services during the install (policy-rc.d 101), and docker's units are disabled afterwards.
  # A docker.io that was installed before is left as it was.
  new_docker=0
  [[ " ${missing[*]} " == *" docker.io "* ]] && new_docker=1
  policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy=1
  fi
  apt-get update -qq
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [ "$policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$status" = 0 ] || exit "$status"
  if [ "$new_docker" = 1 ]; then
    systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
  fi
fi

# the daemon's socket is group hull's (0660): members may drive hull, which is root-equivalent
groupadd -f hull

stamp=node_modules/.hull-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "hull setup: installing npm dependencies (the SQLite binding compiles once, about a minute)"
  # npm ci refuses this lock file (npm 11 and node-unix-socket's per-platform optional packages), so install from it
  npm install --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# hull's guest agent (PID 1 of its VMs): a small static C program, rebuilt when its source changes
if [ ! -x guest/hull-agent ] || [ guest/agent.c -nt guest/hull-agent ]; then
  echo "hull setup: building the VM guest agent (guest/hull-agent)"
  musl-gcc -static -Os -s -Wall -o guest/hull-agent guest/agent.c
fi
# hull's terminal helper for `exec -t` with crun (src/container/ttywait.ts)
if [ ! -x guest/hull-ttywait ] || [ guest/ttywait.c -nt guest/hull-ttywait ]; then
  echo "hull setup: building the exec terminal helper (guest/hull-ttywait)"
  musl-gcc -static -Os -s -Wall -o guest/hull-ttywait guest/ttywait.c
fi

npm run --silent build
ln -sf "$PWD/bin/hull" /usr/local/bin/hull
echo "hull setup: ready ($(hull --version))"
