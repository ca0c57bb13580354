/**
 * The cgroup v2 tier: hull's v2 code paths (src/host/cgroups.ts, the runtimes' cgroup handling, the resource
 * limits of src/container/spec.ts) against a real, pure cgroup v2 hierarchy, on a host that has none (v1 or
 * hybrid, as this CI machine). A Debian root made from Debian's packages (mmdebstrap: runc, crun, conmon,
 * busybox-static, … and this host's node binary) is imported as an image and booted as a hull VM, whose agent
 * mounts cgroup2 alone at /sys/fs/cgroup with the controllers enabled, as systemd does. The repository is shared
 * into the guest read-only; test/helpers/v2-guest-inner.sh runs the cgroup tests there with HULL_TEST_CGROUP=v2
 * (they insist on v2), and their TAP summary becomes this test's figures. One boot in all.
 *
 * The root is built once per machine and package list: /var/cache/hull-test/v2-root-<key>.tar ($HULL_TEST_CACHE);
 * the last run's inner output is kept next to it (v2-guest-last.tap).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HullRoot, REPO } from './helpers/hull.js';
import { detectCgroupLayout } from '../src/host/cgroups.js';
import { findExecutable } from '../src/host/probe.js';
import { ensureDefaultKernel } from '../src/vm/kernel.js';

/** What the guest needs: the runtimes and their helpers, busybox for the test images, kmod for overlay. */
const PACKAGES = ['runc', 'crun', 'conmon', 'busybox-static', 'util-linux', 'iproute2', 'procps', 'kmod', 'libstdc++6'];
const SUITE = 'bookworm';
const CACHE = process.env.HULL_TEST_CACHE ?? '/var/cache/hull-test';
const VM_CACHE = process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache';

const layout = detectCgroupLayout();
const qemu = process.env.HULL_QEMU || findExecutable('qemu-system-x86_64');
const virtiofsd =
  ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd'].some((p) => existsSync(p)) || findExecutable('virtiofsd');
const skip =
  layout === 'v2'
    ? 'this host is pure cgroup v2 itself: the ordinary tests exercise the v2 paths'
    : !findExecutable('mmdebstrap')
      ? "mmdebstrap is not installed (scripts/setup.sh installs it): it makes the guest's Debian root"
      : !qemu
        ? 'qemu-system-x86_64 is not installed: the v2 guest is a VM'
        : !virtiofsd
          ? 'virtiofsd is not installed: the repository is shared into the guest through virtiofs'
          : false;

/** The cached Debian root tarball for this package list and this node binary; made with mmdebstrap when missing. */
function debianRoot(): string {
  const node = process.execPath;
  const key = createHash('sha256')
    .update(JSON.stringify({ SUITE, PACKAGES, node: [process.version, statSync(node).size] }))
    .digest('hex')
    .slice(0, 16);
  const tar = join(CACHE, `v2-root-${key}.tar`);
  if (existsSync(tar)) return tar;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${tar}.tmp-${process.pid}`;
  const started = Date.now();
  const r = spawnSync(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=minbase',
      '--format=tar',
      `--include=${PACKAGES.join(',')}`,
      // this host's node (Debian 12's nodejs is 18; hull needs 20); its libraries are libc, libstdc++ and libgcc
      `--customize-hook=copy-in ${node} /usr/local/bin`,
      SUITE,
      tmp,
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`mmdebstrap failed (${r.status ?? r.signal}):\n${r.stderr.slice(-2000)}`);
  }
  renameSync(tmp, tar);
  console.log(`# built the Debian root ${basename(tar)} with mmdebstrap in ${Date.now() - started} ms`);
  return tar;
}

interface TapCounts {
  tests: number;
  pass: number;
  fail: number;
  skipped: number;
  cancelled: number;
  todo: number;
}

/** Sum the summaries ("# pass N" …) of every TAP stream in `out`. */
function tapCounts(out: string): TapCounts {
  const c: TapCounts = { tests: 0, pass: 0, fail: 0, skipped: 0, cancelled: 0, todo: 0 };
  for (const m of out.matchAll(/^# (tests|pass|fail|skipped|cancelled|todo) (\d+)$/gm))
    c[m[1] as keyof TapCounts] += Number(m[2]);
  return c;
}

const root = new HullRoot('v2guest', { HULL_VM_CACHE: VM_CACHE });
after(() => root.dispose());

test('the cgroup tests pass inside a pure cgroup v2 guest', { skip, timeout: 1_200_000 }, async () => {
  const started = Date.now();
  const tar = debianRoot();
  const kernel = await ensureDefaultKernel(VM_CACHE);
  await root.ok('import', tar, 'v2root');
  const prepared = Date.now();
  const volumes = ['-v', `${REPO}:/hull:ro`, '-v', `${kernel.modulesDir}:/lib/modules/${kernel.version}:ro`];
  // node_modules may be a link out of the tree (a worktree's): share its target at the same path
  const modules = realpathSync(join(REPO, 'node_modules'));
  if (modules !== join(REPO, 'node_modules')) volumes.push('-v', `${modules}:${modules}:ro`);
  const r = await root.hullWith(
    { timeoutMs: 1_100_000 },
    'run',
    '--rm',
    '--isolation',
    'vm',
    '--network',
    'none',
    '--memory',
    '2g',
    '--cpus',
    '2',
    ...volumes,
    'v2root',
    '/bin/sh',
    '/hull/test/helpers/v2-guest-inner.sh',
  );
  const ran = Date.now();
  // the whole inner output (TAP) stays for a look after a failure; the next run overwrites it
  const saved = join(CACHE, 'v2-guest-last.tap');
  writeFileSync(saved, `${r.stdout}\n# --- stderr ---\n${r.stderr}`);
  const counts = tapCounts(r.stdout);
  const failed = r.stdout.split('\n').filter((l) => /^\s*not ok /.test(l));
  console.log(
    `# v2 guest: ${counts.tests} tests, ${counts.pass} passed, ${counts.fail} failed, ${counts.skipped} skipped, ${counts.cancelled} cancelled`,
  );
  console.log(
    `# v2 guest: root ready and imported in ${prepared - started} ms, boot and inner tests ${ran - prepared} ms`,
  );
  for (const l of r.stdout
    .split('\n')
    .filter((x) => /^# (guest kernel|inner times|.*v2 cgroup stats|.*--blkio-weight 300 with)/.test(x)))
    console.log(l);
  assert.match(
    r.stdout,
    /^# guest kernel \S+; cgroup2 at \/sys\/fs\/cgroup/m,
    `the guest did not run the tests:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
  );
  assert.equal(
    counts.fail + counts.cancelled,
    0,
    `failed inside the v2 guest (all output: ${saved}):\n${failed.join('\n')}\n--- output ---\n${r.stdout.slice(-12000)}\n${r.stderr.slice(-2000)}`,
  );
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.ok(counts.pass >= 20, `too few tests ran in the guest (${counts.pass}):\n${r.stdout.slice(-6000)}`);
});

test('leaves nothing behind', { skip }, () => root.cleanupAndCheck());
