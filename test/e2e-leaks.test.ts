/**
 * End to end: 50 `run --rm busybox true` cycles in a row, then the leak check. First, the leak check itself is
 * shown to see what it looks for (a live instance, a stray mount, a stray cgroup), so that a clean result means
 * something.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, TEST_NETWORK } from './helpers/hull.js';
import { cgroupLeaks, checkLeaks, mountLeaks } from './helpers/leaks.js';
import { PURE_V2 } from './helpers/cgroup.js';

const root = new HullRoot('leaks');
after(() => root.dispose());

const CYCLES = 50;

test('the leak check sees a live instance, a stray mount and a stray cgroup', async () => {
  const id = (await root.ok('run', '-d', ...TEST_NETWORK, 'busybox', 'sleep', '60')).trim();
  const leaks = await checkLeaks(root.dir, [id], () => root.ids(), 0);
  const kinds = new Set(leaks.map((l) => l.kind));
  for (const k of ['instance', 'mount', 'cgroup', 'process', 'file'] as const)
    assert.ok(kinds.has(k), `reports a ${k}: ${JSON.stringify(leaks)}`);
  assert.ok(
    leaks.some((l) => l.kind === 'process' && /conmon/.test(l.what)),
    'conmon is named',
  );
  await root.ok('rm', '-f', id);
  assert.deepEqual(await checkLeaks(root.dir, [id], () => root.ids()), []);

  const mnt = join(root.dir, 'stray-mount');
  mkdirSync(mnt);
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]).status, 0);
  try {
    assert.deepEqual(
      mountLeaks(root.dir).map((l) => l.what),
      [mnt],
    );
  } finally {
    spawnSync('umount', [mnt]);
    rmdirSync(mnt);
  }
  const fake = 'f'.repeat(64);
  const dir = PURE_V2 ? `/sys/fs/cgroup/hull/${fake}` : `/sys/fs/cgroup/pids/hull/${fake}`;
  mkdirSync(dir, { recursive: true });
  try {
    assert.deepEqual(
      cgroupLeaks([fake]).map((l) => l.what),
      [dir],
    );
  } finally {
    rmdirSync(dir);
  }
  assert.deepEqual(cgroupLeaks([fake]), []);
});

test(`${CYCLES} run --rm busybox true cycles, then nothing is left`, async () => {
  await root.ok('run', '--rm', 'busybox', 'true'); // the first run builds the busybox image: not timed
  const times: number[] = [];
  const started = Date.now();
  for (let i = 0; i < CYCLES; i++) {
    const r = await root.hull('run', '--rm', 'busybox', 'true');
    assert.equal(r.code, 0, `cycle ${i}: ${r.stderr}`);
    assert.equal(r.stdout + r.stderr, '', `cycle ${i} printed nothing`);
    times.push(r.ms);
  }
  const total = Date.now() - started;
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(
    `# ${CYCLES} cycles of run --rm busybox true: ${total} ms in all, median ${median} ms, slowest ${sorted.at(-1)} ms`,
  );
  assert.deepEqual(await root.ids(), []);
  const ids = await root.everyId();
  assert.equal(
    ids.length,
    CYCLES + 2,
    "every cycle had its own instance (plus the first run and the leak-check test's)",
  );
});

test('leaves nothing behind', () => root.cleanupAndCheck());
