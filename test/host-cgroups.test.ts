import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import {
  cgroupExists,
  cgroupPaths,
  detectCgroupLayout,
  parseBlkioServiceBytes,
  parseFlatKeyed,
  parseIoStat,
  readCgroupPids,
  readCgroupStats,
  readFreezerState,
  readMemoryLimit,
  removeCgroup,
  v1Mounts,
} from '../src/host/cgroups.js';
import { waitFor } from './helpers/hull.js';

const name = `/hull-test-cg-${process.pid}`;
const layout = detectCgroupLayout();
const children: import('node:child_process').ChildProcess[] = [];

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  // the processes must be gone before the directories can be removed
  for (let i = 0; i < 100 && removeCgroup(cgroupPaths(name, layout)).length > 0; i++)
    await new Promise((r) => setTimeout(r, 20));
});

test('layout detection matches the mounts', () => {
  assert.ok(['v1', 'v2', 'hybrid'].includes(layout));
  if (process.env.HULL_TEST_CGROUP === 'v2')
    assert.equal(layout, 'v2', 'the cgroup v2 guest tier runs on a pure v2 hierarchy');
  if (layout === 'v2') {
    const paths = cgroupPaths('/hull/x', layout);
    assert.deepEqual([paths.v2, paths.v1.size], ['/sys/fs/cgroup/hull/x', 0]);
  }
  // what the mounts say: cgroup2 at the root (v2), cgroup2 beside v1 controllers (hybrid), or v1 alone
  const expected = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? 'v2'
    : existsSync('/sys/fs/cgroup/unified/cgroup.controllers')
      ? 'hybrid'
      : 'v1';
  assert.equal(layout, expected);
  if (layout !== 'v2') {
    const m = v1Mounts();
    assert.equal(m.get('memory'), '/sys/fs/cgroup/memory');
    assert.ok(m.has('cpuacct') && m.has('freezer') && m.has('pids'));
  }
});

test('parsers for v1 and v2 statistics files', () => {
  assert.deepEqual(
    parseBlkioServiceBytes('8:0 Read 100\n8:0 Write 20\n8:0 Sync 5\n8:0 Total 120\n8:16 Read 1\nTotal 121\n'),
    { read: 101, write: 20 },
  );
  assert.deepEqual(parseIoStat('8:0 rbytes=100 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n'), {
    read: 101,
    write: 22,
  });
  assert.deepEqual(
    [...parseFlatKeyed('usage_usec 1500\nuser_usec 1000\n')],
    [
      ['usage_usec', 1500],
      ['user_usec', 1000],
    ],
  );
});

test('paths, stats, freezer and removal on a real cgroup', {
  skip: layout === 'v2' ? 'v1/hybrid host test' : false,
}, async () => {
  const paths = cgroupPaths(name, layout);
  assert.equal(paths.v1.get('memory'), `/sys/fs/cgroup/memory${name}`);
  for (const ctrl of ['memory', 'cpuacct', 'pids', 'freezer', 'blkio', 'cpu'])
    mkdirSync(paths.v1.get(ctrl)!, { recursive: true });
  assert.ok(cgroupExists(paths));
  writeFileSync(join(paths.v1.get('memory')!, 'memory.limit_in_bytes'), String(128 * 1024 * 1024));
  // a busy process inside: cpu and memory usage become non-zero. It starts working only once it is in the
  // cgroup (v1 charges memory to the cgroup a page was allocated in, and does not move charges with a task).
  const child = spawn(
    'sh',
    ['-c', 'read go; i=0; s=; while [ $i -lt 4000 ]; do i=$((i+1)); s="$s$i"; done; echo done; exec sleep 30'],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  children.push(child);
  for (const ctrl of ['memory', 'cpuacct', 'pids', 'freezer', 'blkio', 'cpu'])
    writeFileSync(join(paths.v1.get(ctrl)!, 'cgroup.procs'), String(child.pid));
  const worked = new Promise((r) => child.stdout!.once('data', r));
  child.stdin!.write('go\n');
  await worked;
  const s = readCgroupStats(paths);
  console.log(`# cgroup stats of the busy child: cpu ${s.cpuUsageNs} ns, memory ${s.memoryUsage} bytes`);
  assert.ok(s.cpuUsageNs > 0, `cpu ${s.cpuUsageNs}`);
  assert.ok(s.memoryUsage > 0, `memory ${s.memoryUsage}`);
  assert.equal(s.memoryLimit, 128 * 1024 * 1024);
  assert.ok(s.pids >= 1);
  assert.equal(readMemoryLimit(paths), 128 * 1024 * 1024);
  assert.ok(readCgroupPids(paths).includes(child.pid!));
  assert.equal(readFreezerState(paths), 'THAWED');
  // busy cgroups stay, and are reported
  assert.ok(removeCgroup(paths).length > 0);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  await waitFor('the cgroup to empty', () => readCgroupPids(paths).length === 0, 10_000, 10);
  assert.deepEqual(removeCgroup(paths), []);
  assert.equal(cgroupExists(paths), false);
  assert.deepEqual(removeCgroup(paths), []); // idempotent
  assert.equal(readFreezerState(paths), null);
});

test('v2: paths, stats, freezer and removal on a real cgroup', {
  skip:
    layout === 'v2'
      ? false
      : `pure cgroup v2 host test (this host is ${layout}; test/cgroup-v2-guest.test.ts runs it in a v2 guest)`,
}, async () => {
  const paths = cgroupPaths(name, layout);
  const dir = paths.v2!;
  assert.equal(dir, `/sys/fs/cgroup${name}`);
  // the controllers a child gets are the ones enabled in the parent's subtree_control (systemd, hull's agent)
  const enabled = readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').trim().split(/\s+/);
  for (const c of ['cpu', 'memory', 'pids', 'io'])
    assert.ok(enabled.includes(c), `${c} enabled in /sys/fs/cgroup/cgroup.subtree_control: ${enabled}`);
  mkdirSync(dir);
  assert.ok(cgroupExists(paths));
  writeFileSync(join(dir, 'memory.max'), String(128 * 1024 * 1024));
  assert.equal(readMemoryLimit(paths), 128 * 1024 * 1024);
  writeFileSync(join(dir, 'memory.max'), 'max');
  assert.equal(readMemoryLimit(paths), Infinity);
  assert.equal(readCgroupStats(paths).memoryLimit, totalmem(), "unlimited reads as the host's memory");
  writeFileSync(join(dir, 'memory.max'), String(128 * 1024 * 1024));
  // a busy process inside (v2 charges the memory it allocates after the move)
  const child = spawn(
    'sh',
    ['-c', 'read go; i=0; s=; while [ $i -lt 4000 ]; do i=$((i+1)); s="$s$i"; done; echo done; exec sleep 30'],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  children.push(child);
  writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
  const worked = new Promise((r) => child.stdout!.once('data', r));
  child.stdin!.write('go\n');
  await worked;
  const s = readCgroupStats(paths);
  console.log(`# v2 cgroup stats of the busy child: cpu ${s.cpuUsageNs} ns, memory ${s.memoryUsage} bytes`);
  assert.ok(s.cpuUsageNs > 0, `cpu ${s.cpuUsageNs}`);
  assert.ok(s.memoryUsage > 0, `memory ${s.memoryUsage}`);
  assert.equal(s.memoryLimit, 128 * 1024 * 1024);
  assert.equal(s.pids, 1);
  assert.equal(s.oomKills, 0);
  assert.deepEqual(readCgroupPids(paths), [child.pid]);
  assert.equal(readFreezerState(paths), 'THAWED');
  writeFileSync(join(dir, 'cgroup.freeze'), '1');
  for (let i = 0; i < 500 && readFreezerState(paths) !== 'FROZEN'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(readFreezerState(paths), 'FROZEN');
  writeFileSync(join(dir, 'cgroup.freeze'), '0');
  assert.equal(readFreezerState(paths), 'THAWED');
  // busy cgroups stay, and are reported; a child cgroup (as runtimes make) goes with its parent
  mkdirSync(join(dir, 'sub'));
  assert.deepEqual(removeCgroup(paths), [dir]);
  assert.equal(existsSync(join(dir, 'sub')), false);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  for (let i = 0; i < 100 && readCgroupPids(paths).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(removeCgroup(paths), []);
  assert.equal(cgroupExists(paths), false);
  assert.deepEqual(removeCgroup(paths), []); // idempotent
  assert.equal(readFreezerState(paths), null);
  assert.equal(readMemoryLimit(paths), null);
});
