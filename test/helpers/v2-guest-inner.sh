#!/bin/sh
# Runs inside the guest of test/cgroup-v2-guest.test.ts (a Debian root booted as a hull VM; PID 1 is hull's
# agent, which mounts cgroup2 alone at /sys/fs/cgroup). The repository is at /hull (read-only), the cached guest
# kernel's modules at /lib/modules/$(uname -r). Checks that the hierarchy is pure v2, loads overlay (containers'
# root filesystems), then runs hull's cgroup tests: all of the host-level ones, and the limit, stats, update,
# pause, OOM, resource-flag and leak-check tests of the driver and CLI suites (by name). Exits non-zero when any
# fails.
set -eu
fs=$(stat -fc %T /sys/fs/cgroup)
[ "$fs" = cgroup2fs ] || { echo "not a pure cgroup v2 guest: /sys/fs/cgroup is $fs" >&2; exit 3; }
echo "# guest kernel $(uname -r); cgroup2 at /sys/fs/cgroup, enabled for children: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
modprobe overlay
cd /hull
export HULL_TEST_CGROUP=v2 HULL_TEST_NETWORK=none
status=0
t0=$(date +%s)
node --import tsx --test --test-concurrency=1 --test-reporter=tap test/host-cgroups.test.ts test/host-runtime.test.ts || status=1
t1=$(date +%s)
node --import tsx --test --test-concurrency=1 --test-reporter=tap \
  --test-name-pattern='^(create, start, wait|an OOM kill|pause and resume through the freezer|--blkio-weight: applied|run -d --name web|the cgroup has the limits|stats --no-stream|update --memory 128m|pause freezes the cgroup|rm -f removes the running web|the leak check sees|leaves nothing behind)' \
  test/container-driver.test.ts test/e2e-lifecycle.test.ts test/e2e-leaks.test.ts || status=1
# the resource flags through the CLI (cpuset, cpu shares as v2's weight, memory with swap); this file's own
# leak check expects the output of tests left out here
node --import tsx --test --test-reporter=tap --test-name-pattern='^--pids-limit, --cpuset-cpus' test/e2e-isolation.test.ts || status=1
echo "# inner times: host-level tests $((t1 - t0)) s, driver and CLI tests $(($(date +%s) - t1)) s"
exit $status
