/**
 * End to end: storage pools and volumes (issue 14). Real btrfs and xfs filesystems on loop files under the test
 * root, real overlay containers, one VM (TCG: kept short): pools of each driver, quotas and their overflow,
 * snapshots and restore, export/import (with an archive that tries to escape), clone, a volume shared by two
 * containers and by a container and a VM, docker's copy-up, anonymous VOLUMEs and rm -v, kill -9 in the middle
 * of a snapshot, restore and import (HULL_STORAGE_FAULT), a pool mounted again after a host restart, and an old
 * root's directory volume. The leak check covers the pools' mounts and loop devices.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from './helpers/daemon.js';
import { HullRoot } from './helpers/hull.js';
import { loopLeaks } from './helpers/leaks.js';
import { rawTar } from './helpers/tar.js';

const has = (p: string) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const btrfs = has('mkfs.btrfs') ? false : 'needs btrfs-progs (mkfs.btrfs)';
const xfs = has('mkfs.xfs') ? false : 'needs xfsprogs (mkfs.xfs)';
const qemu = has('qemu-system-x86_64') ? false : 'needs QEMU';
const dockerCli = existsSync('/usr/bin/docker') ? false : "needs the docker CLI of Debian's docker.io";

const root = new HullRoot('storage', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const work = mkdtempSync('/tmp/hull-test-storage-work-');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

const mountpoint = async (v: string) => (await root.ok('volume', 'inspect', '-f', '{{.Mountpoint}}', v)).trim();

describe('pools', () => {
  test('the default pool exists; a dir pool refuses --size with the reason; rm of the default pool is refused', async () => {
    assert.match(await root.ok('storage', 'pool', 'ls'), /^default +dir /m);
    const r = await root.hull('storage', 'pool', 'create', 'd1', '--driver', 'dir', '--size', '1g');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^hull: the dir driver has no quotas or size: drop --size/m);
    const src = join(work, 'dirpool');
    mkdirSync(src);
    assert.equal(await root.ok('storage', 'pool', 'create', 'd1', '--driver', 'dir', '--source', src), 'd1\n');
    await root.ok('volume', 'create', '--pool', 'd1', 'dv');
    assert.equal(await mountpoint('dv'), join(src, 'volumes', 'dv'));
    const sized = await root.hull('volume', 'create', '--pool', 'd1', '--size', '10m', 'dv2');
    assert.match(sized.stderr, /uses the dir driver, which has no quotas: drop --size/);
    const busy = await root.hull('storage', 'pool', 'rm', 'd1');
    assert.match(busy.stderr, /^hull: storage pool d1 holds volumes \(dv\): remove them first/m);
    await root.ok('volume', 'rm', 'dv');
    assert.equal(await root.ok('storage', 'pool', 'rm', 'd1'), 'd1\n');
    assert.deepEqual(readdirSync(join(src, 'volumes')), []);
    assert.match((await root.hull('storage', 'pool', 'rm', 'default')).stderr, /default pool cannot be removed/);
    const bad = await root.hull('volume', 'create', '--pool', '../x', 'vv');
    assert.match(bad.stderr, /no such storage pool/);
  });

  test('btrfs: create (loop image), inspect (size, used, free, volumes), quota overflow, the pool stays usable', {
    skip: btrfs,
  }, async () => {
    await root.ok('storage', 'pool', 'create', 'fast', '--driver', 'btrfs', '--size', '256m');
    const [p] = JSON.parse(await root.ok('storage', 'pool', 'inspect', 'fast')) as Record<string, unknown>[];
    assert.equal(p!.Driver, 'btrfs');
    assert.equal(p!.Quotas, true);
    assert.ok((p!.Size as number) > 200 * 1024 ** 2 && (p!.Free as number) > 0, JSON.stringify(p));
    assert.deepEqual(p!.Volumes, []);
    await root.ok('volume', 'create', '--pool', 'fast', '--size', '20m', 'quota');
    assert.match(await root.ok('volume', 'ls'), /^local +quota +fast +20\.97MB$/m);
    const over = await root.hull(
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      'quota:/d',
      'busybox',
      'dd',
      'if=/dev/zero',
      'of=/d/big',
      'bs=1M',
      'count=40',
    );
    assert.notEqual(over.code, 0);
    assert.match(over.stderr, /Disk quota exceeded|No space left/);
    // an archive bigger than a quota: a clear error with the pool's name, and nothing made
    const big = join(work, 'big.tar');
    writeFileSync(big, rawTar([{ path: 'blob', body: 'x'.repeat(12 * 1024 ** 2) }]));
    const imp = await root.hull('volume', 'import', '--pool', 'fast', '--size', '8m', big, 'toobig');
    assert.notEqual(imp.code, 0);
    assert.match(imp.stderr, /^hull: import of volume toobig: storage pool fast is full/m);
    assert.doesNotMatch(await root.ok('volume', 'ls', '-q'), /toobig/);
    // still usable: another volume, written and read
    await root.ok('run', '--rm', '--network', 'none', '-v', 'quota:/d', 'busybox', 'rm', '/d/big');
    await root.ok('volume', 'create', '--pool', 'fast', 'other');
    assert.equal(
      await root.ok(
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        'other:/o',
        'busybox',
        'sh',
        '-c',
        'echo ok > /o/f && cat /o/f',
      ),
      'ok\n',
    );
    const [p2] = JSON.parse(await root.ok('storage', 'pool', 'inspect', 'fast')) as Record<string, unknown>[];
    assert.deepEqual(p2!.Volumes, ['other', 'quota']);
  });

  test('xfs: create, inspect, a volume, rm (project quotas when the kernel has them)', { skip: xfs }, async () => {
    await root.ok('storage', 'pool', 'create', 'xp', '--driver', 'xfs', '--size', '320m');
    const [p] = JSON.parse(await root.ok('storage', 'pool', 'inspect', 'xp')) as Record<string, unknown>[];
    assert.equal(p!.Driver, 'xfs');
    if (p!.Quotas) {
      await root.ok('volume', 'create', '--pool', 'xp', '--size', '10m', 'xq');
      const over = await root.hull(
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        'xq:/d',
        'busybox',
        'dd',
        'if=/dev/zero',
        'of=/d/big',
        'bs=1M',
        'count=20',
      );
      assert.match(over.stderr, /Disk quota exceeded|No space left/);
    } else {
      // this kernel's XFS has no quota support: the pool works, --size says why it cannot be had
      const r = await root.hull('volume', 'create', '--pool', 'xp', '--size', '10m', 'xq');
      assert.match(r.stderr, /^hull: pool xp is mounted without project quotas .*: drop --size, or use a btrfs pool$/m);
      await root.ok('volume', 'create', '--pool', 'xp', 'xq');
    }
    writeFileSync(join(await mountpoint('xq'), 'f'), 'xfs\n');
    await root.ok('volume', 'snapshot', 'create', 'xq', 's1');
    writeFileSync(join(await mountpoint('xq'), 'f'), 'changed\n');
    await root.ok('volume', 'snapshot', 'restore', 'xq', 's1');
    assert.equal(readFileSync(join(await mountpoint('xq'), 'f'), 'utf8'), 'xfs\n');
    await root.ok('volume', 'rm', 'xq');
    assert.equal(await root.ok('storage', 'pool', 'rm', 'xp'), 'xp\n');
  });
});

describe('snapshots, export, import, clone', () => {
  for (const pool of ['default', 'fast']) {
    test(`${pool}: snapshot create/ls/restore/rm, export/import round trip, clone`, {
      skip: pool === 'fast' ? btrfs : false,
    }, async () => {
      const v = `snap-${pool}`;
      await root.ok('volume', 'create', '--pool', pool, v);
      const dir = await mountpoint(v);
      writeFileSync(join(dir, 'a'), 'one\n');
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'b'), 'two\n');
      const r = await root.hull('volume', 'snapshot', 'create', v, 'before');
      assert.equal(r.code, 0, r.stderr);
      if (pool === 'default') assert.match(r.stderr, /dir driver: the snapshot is a full copy/);
      writeFileSync(join(dir, 'a'), 'changed\n');
      rmSync(join(dir, 'sub'), { recursive: true });
      assert.match(await root.ok('volume', 'snapshot', 'ls', v), /^before +\d{4}-/m);
      await root.ok('volume', 'snapshot', 'restore', v, 'before');
      assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'one\n');
      assert.equal(readFileSync(join(dir, 'sub', 'b'), 'utf8'), 'two\n');
      const tarFile = join(work, `${v}.tar`);
      await root.ok('volume', 'export', v, '-o', tarFile);
      await root.ok('volume', 'import', '--pool', pool, tarFile, `${v}-imp`);
      assert.equal(readFileSync(join(await mountpoint(`${v}-imp`), 'sub', 'b'), 'utf8'), 'two\n');
      await root.ok('volume', 'clone', v, `${v}-clone`);
      assert.equal(readFileSync(join(await mountpoint(`${v}-clone`), 'a'), 'utf8'), 'one\n');
      assert.equal((await root.hull('volume', 'clone', v, `${v}-clone`)).code, 1);
      await root.ok('volume', 'snapshot', 'rm', v, 'before');
      assert.equal(await root.ok('volume', 'snapshot', 'ls', v, '--format', '{{.Name}}'), '');
      await root.ok('volume', 'rm', v, `${v}-imp`, `${v}-clone`);
    });
  }

  test('import: entries cannot reach outside the volume (.., absolute, through a symlink)', async () => {
    const outside = join(work, 'outside');
    mkdirSync(outside);
    const evil = join(work, 'evil.tar');
    writeFileSync(
      evil,
      rawTar([
        { path: 'ok', body: 'fine\n' },
        { path: '../escaped', body: 'x' },
        { path: `${outside}/abs`, body: 'x' },
        { path: 'link', type: 'SymbolicLink', link: outside },
        { path: 'link/through', body: 'x' },
      ]),
    );
    await root.ok('volume', 'import', evil, 'evil');
    const dir = await mountpoint('evil');
    assert.equal(readFileSync(join(dir, 'ok'), 'utf8'), 'fine\n');
    assert.deepEqual(readdirSync(outside), []);
    assert.ok(!existsSync(join(dir, '..', 'escaped')) && !existsSync(join(dir, '..', '..', 'escaped')));
    await root.ok('volume', 'rm', 'evil');
    for (const bad of ['../x', 'a/b', '.hidden'])
      assert.match(
        (await root.hull('volume', 'snapshot', 'create', 'nope', bad)).stderr,
        /invalid snapshot name|no such volume/,
      );
  });
});

describe('volumes in instances', () => {
  test('a pool volume shared by two containers; in use: rm refused; the data outlives both', {
    skip: btrfs,
  }, async () => {
    await root.ok('volume', 'create', '--pool', 'fast', 'shared');
    await root.ok(
      'run',
      '-d',
      '--name',
      's1',
      '--network',
      'none',
      '-v',
      'shared:/data',
      'busybox',
      'sh',
      '-c',
      'echo from-s1 > /data/x && exec sleep 1000',
    );
    const x = join(await mountpoint('shared'), 'x');
    for (let i = 0; i < 100 && !existsSync(x); i++) await root.ok('exec', 's1', 'true');
    assert.equal(
      await root.ok('run', '--rm', '--network', 'none', '-v', 'shared:/d:ro', 'busybox', 'cat', '/d/x'),
      'from-s1\n',
    );
    const inUse = await root.hull('volume', 'rm', 'shared');
    assert.match(inUse.stderr, /^hull: volume shared is in use by s1: remove it first$/m);
    await root.ok('rm', '-f', '-v', 's1');
    assert.equal(readFileSync(x, 'utf8'), 'from-s1\n');
    const restore = await root.hull('volume', 'snapshot', 'restore', 'shared', 'none');
    assert.match(restore.stderr, /has no snapshot named none/);
  });

  test("copy-up: a new named volume gets the image's files at its path; --mount volume-opt picks the pool", {
    skip: btrfs,
  }, async () => {
    const out = await root.ok(
      'run',
      '--rm',
      '--network',
      'none',
      '--mount',
      'type=volume,src=etc,dst=/etc,volume-opt=pool=fast',
      'busybox',
      'sh',
      '-c',
      'cat /etc/passwd | head -1; echo mine > /etc/mine',
    );
    assert.match(out, /^root:/);
    assert.match(await root.ok('volume', 'ls'), /^local +etc +fast +-$/m);
    const dir = await mountpoint('etc');
    assert.ok(existsSync(join(dir, 'passwd')) && existsSync(join(dir, 'mine')));
    // a volume that is not empty is not filled again
    rmSync(join(dir, 'passwd'));
    await root.ok('run', '--rm', '--network', 'none', '-v', 'etc:/etc', 'busybox', 'true');
    assert.ok(!existsSync(join(dir, 'passwd')));
    // volume-nocopy: an empty new volume stays empty
    await root.ok(
      'run',
      '--rm',
      '--network',
      'none',
      '--mount',
      'type=volume,src=nocopy,dst=/etc,volume-nocopy',
      'busybox',
      'true',
    );
    assert.ok(!existsSync(join(await mountpoint('nocopy'), 'passwd')));
    await root.ok('volume', 'rm', 'etc', 'nocopy');
  });

  test("anonymous volumes for an image's VOLUME, filled from the image, removed by rm -v", async () => {
    const ctx = join(work, 'volimage');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox\nRUN mkdir /vol && echo seed > /vol/s\nVOLUME /vol\n');
    await root.ok('build', '-q', '-t', 'withvol:1', ctx);
    await root.ok('create', '--name', 'anon', '--network', 'none', 'withvol:1', 'true');
    const names = (await root.ok('volume', 'ls', '-q'))
      .trim()
      .split('\n')
      .filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.equal(names.length, 1);
    assert.equal(readFileSync(join(await mountpoint(names[0]!), 's'), 'utf8'), 'seed\n');
    await root.ok('rm', '-v', 'anon');
    assert.doesNotMatch(await root.ok('volume', 'ls', '-q'), new RegExp(names[0]!));
    await root.ok('rmi', 'withvol:1');
  });

  test('block volumes: a raw disk file of --size; containers refuse them with the reason', async () => {
    await root.ok('volume', 'create', '--type', 'block', '--size', '16m', 'blk');
    const mp = await mountpoint('blk');
    assert.match(mp, /disk\.raw$/);
    const r = await root.hull('run', '--rm', '--network', 'none', '-v', 'blk:/b', 'busybox', 'true');
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /^hull: volume blk is a block volume: containers mount filesystem volumes only \(block volumes as VM disks are not supported yet\)/m,
    );
    assert.match((await root.hull('volume', 'create', '--type', 'block', 'blk2')).stderr, /needs --size/);
    await root.ok('volume', 'rm', 'blk');
  });

  test('a volume shared by a container and a VM (virtiofs)', { skip: btrfs || qemu }, async () => {
    await root.ok('volume', 'create', '--pool', 'fast', 'vmshare');
    await root.ok(
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      'vmshare:/d',
      'busybox',
      'sh',
      '-c',
      'echo from-ctr > /d/c',
    );
    const out = await root.ok(
      'run',
      '--rm',
      '--isolation',
      'vm',
      '--network',
      'none',
      '-v',
      'vmshare:/d',
      'busybox',
      'sh',
      '-c',
      'cat /d/c; echo from-vm > /d/v',
    );
    assert.match(out, /from-ctr/);
    assert.equal(readFileSync(join(await mountpoint('vmshare'), 'v'), 'utf8'), 'from-vm\n');
    await root.ok('volume', 'rm', 'vmshare');
  });
});

test('the docker CLI through hull daemon: volume create -o size=… -o pool=…, ls, inspect (Options), rm', {
  skip: btrfs || dockerCli,
}, async () => {
  const socket = join(work, 'hull.sock');
  const daemon = await startDaemon(root, socket);
  const docker = (...args: string[]) => {
    const r = spawnSync('/usr/bin/docker', args, {
      encoding: 'utf8',
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(work, 'docker-config') },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  try {
    const c = docker('volume', 'create', '-o', 'size=20m', '-o', 'pool=fast', 'dockvol');
    assert.equal(c.code, 0, c.stderr);
    assert.match(docker('volume', 'ls', '--format', '{{.Name}} {{.Driver}}').stdout, /^dockvol local$/m);
    const i = docker('volume', 'inspect', '-f', '{{.Options.pool}} {{.Options.size}} {{.Mountpoint}}', 'dockvol');
    assert.equal(i.stdout.trim(), `fast 20971520 ${join(root.dir, 'storage', 'mnt', 'fast', 'volumes', 'dockvol')}`);
    assert.match(await root.ok('volume', 'ls'), /^local +dockvol +fast +20\.97MB$/m);
    const bad = docker('volume', 'create', '-o', 'size=20m', 'dirvol');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /uses the dir driver, which has no quotas: drop --size/);
    assert.equal(docker('volume', 'rm', 'dockvol').code, 0);
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  }
});

describe('crashes, restarts, old roots', () => {
  const killed = async (step: string, ...args: string[]) => {
    const r = await root.hullWith({ env: { HULL_STORAGE_FAULT: step } }, ...args);
    assert.equal(r.signal, 'SIGKILL', `${step}: ${r.stderr}`);
  };

  test('kill -9 during snapshot create, restore and import: the volume is whole, before or after', async () => {
    await root.ok('volume', 'create', 'crash');
    const dir = await mountpoint('crash');
    writeFileSync(join(dir, 'f'), 'v1\n');
    await killed('snapshot:copied', 'volume', 'snapshot', 'create', 'crash', 's');
    // the next command finds the journal and rolls the half-made snapshot back
    assert.equal(await root.ok('volume', 'snapshot', 'ls', 'crash', '--format', '{{.Name}}'), '');
    assert.deepEqual(readdirSync(join(root.dir, 'storage', 'journal')), []);
    assert.deepEqual(readdirSync(join(root.dir, 'volumes', '.tmp')), []);
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'v1\n');
    await root.ok('volume', 'snapshot', 'create', 'crash', 's');
    writeFileSync(join(dir, 'f'), 'v2\n');
    // killed after the old data was moved out: the next hull finishes the restore
    await killed('restore:swapped-out', 'volume', 'snapshot', 'restore', 'crash', 's');
    assert.match(await root.ok('volume', 'ls', '-q'), /^crash$/m);
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'v1\n');
    // killed before the swap: rolled back, the volume as it was
    writeFileSync(join(dir, 'f'), 'v3\n');
    await killed('restore:copied', 'volume', 'snapshot', 'restore', 'crash', 's');
    await root.ok('volume', 'ls');
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'v3\n');
    // import killed after extracting, before the rename: no volume, nothing left
    const t = join(work, 'crash.tar');
    await root.ok('volume', 'export', 'crash', '-o', t);
    await killed('import:filled', 'volume', 'import', t, 'crashimp');
    assert.doesNotMatch(await root.ok('volume', 'ls', '-q'), /crashimp/);
    assert.deepEqual(readdirSync(join(root.dir, 'volumes', '.tmp')), []);
    await killed('export:written', 'volume', 'export', 'crash', '-o', join(work, 'half.tar'));
    await root.ok('volume', 'ls');
    assert.ok(!existsSync(join(work, 'half.tar')));
    assert.deepEqual(
      readdirSync(work).filter((f) => f.includes('half')),
      [],
    );
    await root.ok('volume', 'rm', 'crash');
  });

  test('a loop-backed pool is mounted again after a host restart (and on first use)', { skip: btrfs }, async () => {
    await root.ok('volume', 'create', '--pool', 'fast', 'survivor');
    writeFileSync(join(await mountpoint('survivor'), 'f'), 'kept\n');
    await root.ok('volume', 'snapshot', 'create', 'survivor', 's');
    writeFileSync(join(await mountpoint('survivor'), 'f'), 'changed\n');
    // a restore cut short by the crash: finished by the first command after the restart, once the pool is back
    await killed('restore:swapped-out', 'volume', 'snapshot', 'restore', 'survivor', 's');
    const mnt = join(root.dir, 'storage', 'mnt', 'fast');
    // the host restarts: mounts and loop devices are gone
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    assert.deepEqual(loopLeaks(root.dir), []);
    root.env.HULL_BOOT_ID = 'storage-boot-two';
    assert.match(await root.ok('volume', 'ls', '-q'), /^survivor$/m);
    assert.deepEqual(readdirSync(join(root.dir, 'storage', 'journal')), []);
    assert.equal(readFileSync(join(await mountpoint('survivor'), 'f'), 'utf8'), 'kept\n');
    assert.equal(
      await root.ok('run', '--rm', '--network', 'none', '-v', 'survivor:/s', 'busybox', 'cat', '/s/f'),
      'kept\n',
    );
    await root.ok('volume', 'rm', 'survivor');
  });

  test("an old root's directory volume is a default-pool volume", async () => {
    const d = join(root.dir, 'volumes', 'oldvol');
    mkdirSync(join(d, '_data'), { recursive: true });
    writeFileSync(join(d, '_data', 'f'), 'old\n');
    writeFileSync(
      join(d, 'volume.json'),
      JSON.stringify({
        name: 'oldvol',
        driver: 'local',
        mountpoint: join(d, '_data'),
        createdAt: new Date().toISOString(),
        labels: {},
        anonymous: false,
      }),
    );
    assert.match(await root.ok('volume', 'ls'), /^local +oldvol +default +-$/m);
    assert.equal(
      await root.ok('run', '--rm', '--network', 'none', '-v', 'oldvol:/o', 'busybox', 'cat', '/o/f'),
      'old\n',
    );
    await root.ok('volume', 'snapshot', 'create', 'oldvol', 's');
    await root.ok('volume', 'rm', 'oldvol');
    assert.ok(!existsSync(d));
  });
});

describe('files of instances', () => {
  test('hull diff and hull commit: the changes of a container, an image of them with --change', async () => {
    await root.ok(
      'run',
      '--name',
      'changer',
      '--network',
      'none',
      '-e',
      'FOO=bar',
      'busybox',
      'sh',
      '-c',
      'echo x > /new; rm /bin/true; echo y >> /etc/passwd',
    );
    assert.equal(await root.ok('diff', 'changer'), 'C /bin\nD /bin/true\nC /etc\nC /etc/passwd\nA /new\n');
    assert.equal(await root.ok('container', 'diff', 'changer'), await root.ok('diff', 'changer'));
    const id = (
      await root.ok(
        'commit',
        '-c',
        'CMD ["cat", "/new"]',
        '-c',
        'LABEL made=by-commit',
        '-m',
        'a note',
        'changer',
        'committed:1',
      )
    ).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await root.ok('run', '--rm', '--network', 'none', 'committed:1'), 'x\n');
    assert.equal(
      await root.ok(
        'run',
        '--rm',
        '--network',
        'none',
        'committed:1',
        'sh',
        '-c',
        'echo $FOO; test -e /bin/true || echo gone',
      ),
      'bar\ngone\n',
    );
    assert.equal(await root.ok('image', 'inspect', '-f', '{{.Config.Labels.made}}', 'committed:1'), 'by-commit\n');
    assert.match(await root.ok('history', 'committed:1'), /hull commit changer .*a note/);
    const bad = await root.hull('commit', '-c', 'RUN true', 'changer', 'nope:1');
    assert.match(bad.stderr, /^hull: --change "RUN true": RUN cannot be applied; use CMD, ENTRYPOINT/m);
    await root.ok('rm', 'changer');
    await root.ok('rmi', 'committed:1');
  });
});

test('leaves nothing behind: pools removed, no mounts or loop devices under the root', async () => {
  for (const v of (await root.ok('volume', 'ls', '-q')).split('\n').filter(Boolean)) await root.ok('volume', 'rm', v);
  for (const p of (await root.ok('storage', 'pool', 'ls', '-q')).split('\n').filter((n) => n && n !== 'default'))
    await root.ok('storage', 'pool', 'rm', p);
  await root.cleanupAndCheck();
});
