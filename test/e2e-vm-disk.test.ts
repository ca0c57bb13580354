/**
 * End to end: VMs' root disks in storage pools (issue 14, part 5; src/engine/vm-disks.ts). Real QEMU (TCG), one
 * image VM boot: its disk in a btrfs pool, grown with --disk-size (the guest's df sees it), shown by inspect and
 * `storage pool inspect`, the pool's rm refused while it holds the disk, the disk gone with `rm`. Full OS disks
 * (`vm create --disk`, the toy boot disk: no download) are imported into the default pool and the user's file is
 * never modified; --disk-in-place boots the file itself and rm leaves it. Then the leak check (pool mounts, loop
 * devices, disk files in pools).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot } from './helpers/hull.js';
import { toyBootDisk } from './helpers/toy-disk.js';

const has = (p: string) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const qemu = has('qemu-system-x86_64') && has('qemu-img') ? false : 'needs QEMU (qemu-system-x86, qemu-utils)';
const btrfs = has('mkfs.btrfs') ? false : 'needs btrfs-progs (mkfs.btrfs)';

const root = new HullRoot('vmdisk', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
after(() => root.dispose());

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const virtualSize = (f: string): number =>
  (
    JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-U', f], { encoding: 'utf8' }).stdout) as {
      'virtual-size': number;
    }
  )['virtual-size'];
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('VM root disks in storage pools', { skip: qemu, timeout: 600_000 }, () => {
  test('bad input is refused before anything is made', async () => {
    const r = await root.hull('run', '--rm', '--pool', 'default', 'busybox', 'true');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /--pool apply to VMs only: add --isolation vm/);
    const nopool = await root.hull('run', '--rm', '--isolation', 'vm', '--pool', 'nosuch', 'busybox', 'true');
    assert.notEqual(nopool.code, 0);
    assert.match(nopool.stderr, /^hull: no such storage pool: nosuch/m);
    const small = await root.hull('run', '--rm', '--isolation', 'vm', '--disk-size', '10m', 'busybox', 'true');
    assert.notEqual(small.code, 0);
    assert.match(small.stderr, /--disk-size \d+ is too small for a root disk: give at least 64m/);
    const raw = join(root.dir, 'bad.raw');
    writeFileSync(raw, toyBootDisk());
    const both = await root.hull('vm', 'create', '--disk', raw, '--disk-in-place', '--disk-size', '1g');
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /--disk-in-place would resize your own file/);
    const img = await root.hull('vm', 'create', '--disk', raw, '--pool', 'nosuch');
    assert.match(img.stderr, /no such storage pool: nosuch/);
    assert.equal((await root.ok('ps', '-aq')).trim(), '');
    assert.equal((await root.ok('image', 'ls', '-q')).trim().split('\n').filter(Boolean).length, 1, 'busybox only');
  });

  test('an image VM in a btrfs pool with --disk-size: the guest sees the size; inspect, pool inspect, rm', {
    skip: btrfs,
  }, async () => {
    await root.ok('storage', 'pool', 'create', 'vmp', '--driver', 'btrfs', '--size', '256m');
    const id = (
      await root.ok(
        'run',
        '-d',
        '--isolation',
        'vm',
        '--pool',
        'vmp',
        '--disk-size',
        '2g',
        '--name',
        'vb',
        'busybox',
        'sleep',
        '600',
      )
    ).trim();
    // the root filesystem as the guest sees it: 2 GiB less ext4's own overhead
    const df = (await root.ok('exec', 'vb', 'df', '-k', '/')).trim().split('\n').pop()!.split(/\s+/);
    const kib = Number(df[1]);
    assert.ok(kib * 1024 > 1.8 * GiB && kib * 1024 <= 2 * GiB, `df says ${kib} KiB`);

    const poolPath = (await root.ok('storage', 'pool', 'inspect', '-f', '{{.Path}}', 'vmp')).trim();
    const i = await root.inspect('vb');
    const disk = i.Hull.Disk as string;
    assert.equal(disk, join(poolPath, 'vm-disks', `${id}.qcow2`));
    assert.equal(i.Hull.StoragePool, 'vmp');
    assert.equal(i.Hull.DiskSize, 2 * GiB);
    assert.ok(existsSync(disk));
    assert.equal(virtualSize(disk), 2 * GiB);
    const [p] = JSON.parse(await root.ok('storage', 'pool', 'inspect', 'vmp')) as {
      VmDisks: { Instance: string; Path: string; Used: number }[];
    }[];
    assert.deepEqual(
      p!.VmDisks.map((d) => [d.Instance, d.Path]),
      [['vb', disk]],
    );
    assert.ok(p!.VmDisks[0]!.Used > 0);
    const busy = await root.hull('storage', 'pool', 'rm', 'vmp');
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /^hull: storage pool vmp holds the root disks of VMs \(vb\): remove them first/m);

    await root.ok('rm', '-f', 'vb');
    assert.ok(!existsSync(disk), 'the disk goes with its instance');
    assert.equal(await root.ok('storage', 'pool', 'rm', 'vmp'), 'vmp\n');
  });

  test('vm create --disk imports the disk into the pool (grown with --disk-size); the file is never modified', async () => {
    const qcow = join(root.dir, 'toy.qcow2');
    const raw = join(root.dir, 'toy.raw');
    writeFileSync(raw, toyBootDisk());
    assert.equal(spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]).status, 0);
    const before = sha(qcow);
    const id = (
      await root.ok('vm', 'create', '--disk', qcow, '--name', 'imp', '--disk-size', '64m', '--display', 'none')
    ).trim();
    const i = await root.inspect('imp');
    const disk = i.Hull.Disk as string;
    assert.equal(disk, join(root.dir, 'volumes', '.vm-disks', `${id}.qcow2`));
    assert.equal(virtualSize(disk), 64 * MiB);
    await root.ok('start', 'imp');
    await root.ok('stop', '-t', '0', 'imp');
    assert.equal(sha(qcow), before, "the user's file is unchanged");
    const [p] = JSON.parse(await root.ok('storage', 'pool', 'inspect', 'default')) as {
      VmDisks: { Instance: string }[];
    }[];
    assert.deepEqual(
      p!.VmDisks.map((d) => d.Instance),
      ['imp'],
    );
    await root.ok('rm', 'imp');
    assert.ok(!existsSync(disk));
    assert.equal(sha(qcow), before);

    // --disk-in-place: the file itself, which rm leaves
    await root.ok('vm', 'create', '--disk', raw, '--disk-in-place', '--name', 'inplace', '--display', 'none');
    assert.equal((await root.inspect('inplace')).Hull.Disk, raw);
    await root.ok('rm', '-f', 'inplace');
    assert.ok(existsSync(raw));
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
