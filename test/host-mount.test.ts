import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostCommandError } from '../src/common/errors.js';
import {
  bindMount,
  isMountpoint,
  mountOverlay,
  mountTmpfs,
  mountsUnder,
  parseMountInfo,
  readMountInfo,
  unmount,
  unmountAll,
} from '../src/host/mount.js';

const base = mkdtempSync('/tmp/hull-test-mount-');

after(() => {
  for (const m of readMountInfo()
    .filter((x) => x.mountPoint.startsWith(base))
    .reverse())
    spawnSync('umount', ['-l', m.mountPoint]);
  rmSync(base, { recursive: true, force: true });
});

test('parseMountInfo reads fields, optional tags and octal escapes', () => {
  const text = [
    '36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '44 27 0:39 / /tmp/x rw,relatime shared:5 - overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w',
    'garbage',
  ].join('\n');
  const m = parseMountInfo(text);
  assert.equal(m.length, 2);
  assert.equal(m[0]!.mountPoint, '/mnt with space');
  assert.equal(m[0]!.root, '/mnt1');
  assert.deepEqual(m[0]!.optional, ['master:1']);
  assert.equal(m[0]!.fsType, 'ext3');
  assert.deepEqual(m[0]!.superOptions, ['rw', 'errors=continue']);
  assert.equal(m[1]!.fsType, 'overlay');
  assert.ok(m[1]!.superOptions.includes('lowerdir=/a:/b'));
  assert.ok(readMountInfo().some((x) => x.mountPoint === '/'));
});

test('overlay: mount, write through to upper, unmount', async () => {
  const d = join(base, 'ov');
  for (const s of ['l1', 'l2', 'u', 'w', 'm']) mkdirSync(join(d, s), { recursive: true });
  writeFileSync(join(d, 'l1/a'), 'bottom');
  writeFileSync(join(d, 'l2/a'), 'top');
  writeFileSync(join(d, 'l1/b'), 'only-bottom');
  await mountOverlay(join(d, 'm'), { lower: [join(d, 'l2'), join(d, 'l1')], upper: join(d, 'u'), work: join(d, 'w') });
  assert.ok(isMountpoint(join(d, 'm')));
  assert.equal(readFileSync(join(d, 'm/a'), 'utf8'), 'top');
  assert.equal(readFileSync(join(d, 'm/b'), 'utf8'), 'only-bottom');
  writeFileSync(join(d, 'm/c'), 'new');
  assert.equal(readFileSync(join(d, 'u/c'), 'utf8'), 'new');
  assert.deepEqual(
    mountsUnder(d).map((m) => m.mountPoint),
    [join(d, 'm')],
  );
  await unmount(join(d, 'm'));
  assert.equal(isMountpoint(join(d, 'm')), false);
  assert.equal(existsSync(join(d, 'm/a')), false);
  await unmount(join(d, 'm')); // not mounted: no error
});

test('overlay with many long layer paths (option string over a page)', async () => {
  const d = join(base, 'long');
  const lower: string[] = [];
  for (let i = 0; i < 40; i++) {
    const l = join(d, 'layers', `${'l'.repeat(60)}${i}`);
    mkdirSync(l, { recursive: true });
    writeFileSync(join(l, `f${i}`), String(i));
    lower.unshift(l);
  }
  for (const s of ['u', 'w', 'm']) mkdirSync(join(d, s), { recursive: true });
  assert.ok(lower.join(':').length > 4096);
  await mountOverlay(join(d, 'm'), { lower, upper: join(d, 'u'), work: join(d, 'w') });
  assert.equal(readFileSync(join(d, 'm/f0'), 'utf8'), '0');
  assert.equal(readFileSync(join(d, 'm/f39'), 'utf8'), '39');
  assert.equal(await unmountAll(d), 1);
  // too many even when relative: a clear error instead of mount(8)'s
  const many = Array.from({ length: 80 }, (_, i) => join(d, 'layers', `${'l'.repeat(60)}${i}`));
  await assert.rejects(
    mountOverlay(join(d, 'm'), { lower: many, upper: join(d, 'u'), work: join(d, 'w') }),
    /too many layers/,
  );
});

test('bind (read-only) and tmpfs mounts; unmountAll goes deepest first', async () => {
  const d = join(base, 'bind');
  mkdirSync(join(d, 'src'), { recursive: true });
  mkdirSync(join(d, 't'), { recursive: true });
  writeFileSync(join(d, 'src/f'), 'x');
  await mountTmpfs(join(d, 't'), ['size=1m', 'mode=755']);
  mkdirSync(join(d, 't/inner'));
  await bindMount(join(d, 'src'), join(d, 't/inner'), { readOnly: true });
  assert.equal(readFileSync(join(d, 't/inner/f'), 'utf8'), 'x');
  assert.throws(() => writeFileSync(join(d, 't/inner/g'), 'y'), /EROFS/);
  const under = mountsUnder(d).map((m) => m.mountPoint);
  assert.deepEqual(under, [join(d, 't/inner'), join(d, 't')]);
  const tm = readMountInfo().find((m) => m.mountPoint === join(d, 't'));
  assert.equal(tm?.fsType, 'tmpfs');
  assert.equal(await unmountAll(d), 2);
  assert.equal(mountsUnder(d).length, 0);
});

test('a busy mount is detached lazily; a bad mount is a HostCommandError', async () => {
  const d = join(base, 'busy');
  mkdirSync(join(d, 't'), { recursive: true });
  await mountTmpfs(join(d, 't'));
  // a process with its cwd inside keeps the mount busy
  const holder = spawn('sleep', ['30'], { cwd: join(d, 't') });
  try {
    await new Promise((r) => holder.once('spawn', r));
    await unmount(join(d, 't'));
    assert.equal(isMountpoint(join(d, 't')), false);
  } finally {
    holder.kill('SIGKILL');
  }
  await assert.rejects(mountOverlay(join(d, 'nope'), { lower: [join(d, 'missing')] }), HostCommandError);
});
