/**
 * End to end: a hull root on a small file system (a 64 MiB ext4 loop mount, 1 KiB blocks) that fills up.
 *
 *  - a build whose layer does not fit says where, on which file system, and how much it needed;
 *  - a container fills the disk through its overlay, and a filler file takes the last blocks; then
 *  - a command that adds things (run) fails truthfully and leaves nothing;
 *  - a container that exits by itself on the full disk keeps its exit code (conmon cannot write its exit file
 *    in the root; the copy off the root has it);
 *  - ps -a, inspect, exec, kill, stop (with the container's real exit code), rmi, builder prune, system prune and
 *    image prune all work, and rm -f gives the space back; the space reserve comes back afterwards;
 *  - the leak check;
 *  - with no reserve at all (HULL_SPACE_RESERVE=0): ps and inspect still show the truth (an exit they cannot
 *    record), writes fail with a line naming the file system, and rm -f frees the container's space first.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { jsonLines, runHull, waitFor, type HullResult, type Inspect } from './helpers/hull.js';
import { checkLeaks, formatLeaks } from './helpers/leaks.js';

const base = mkdtempSync('/tmp/hull-test-fulldisk-');
const image = join(base, 'fs.img');
const mnt = join(base, 'mnt');
let root = join(mnt, 'root');
/** environment of every hull command (the second suite turns the reserve off) */
let env: Record<string, string> = {};
let mounted = false;
let skip: string | false = false;

if (process.getuid?.() !== 0) skip = 'needs root (loop mounts)';
else {
  mkdirSync(mnt);
  const mk = spawnSync(
    'sh',
    ['-c', `truncate -s 64M ${image} && mkfs.ext4 -q ${image} && mount -o loop ${image} ${mnt}`],
    { encoding: 'utf8' },
  );
  if (mk.status !== 0) skip = `cannot make a loop-mounted ext4 here: ${mk.stderr.trim()}`;
  else mounted = true;
}

const hull = (...args: string[]): Promise<HullResult> => runHull(root, args, { env });
async function ok(...args: string[]): Promise<string> {
  const r = await hull(...args);
  assert.equal(r.code, 0, `hull ${args.join(' ')} exited ${r.code} (signal ${r.signal}): ${r.stderr}`);
  return r.stdout;
}
async function inspect(ref: string): Promise<Inspect> {
  return (JSON.parse(await ok('inspect', ref)) as Inspect[])[0]!;
}
interface PsEntry {
  ID: string;
  Names: string;
  State: string;
  Status: string;
}
const psAll = async () => jsonLines<PsEntry>(await ok('ps', '-a', '--no-trunc', '--format', 'json'));
const free = () => {
  const s = statfsSync(mnt);
  return Number(s.bavail) * Number(s.bsize);
};

/** Wait until the container's log (read directly: a hull command could use the reserve) says `text`. */
async function logSays(id: string, text: string): Promise<void> {
  await waitFor(
    `the log of ${id.slice(0, 12)} to say ${text}`,
    () => {
      try {
        return readFileSync(join(root, 'containers', id, 'ctr.log'), 'utf8').includes(text);
      } catch {
        return false;
      }
    },
    60_000,
  );
}

/** Signal an instance's main process directly (no hull command runs). */
function signalDirectly(id: string, sig: NodeJS.Signals): void {
  process.kill(Number(readFileSync(join(root, 'containers', id, 'pidfile'), 'utf8')), sig);
}

/** Take every block left: big writes, then 1 KiB ones, until ENOSPC. */
function fillUp(path: string): void {
  const fd = openSync(path, 'a');
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 1 << 10]) {
      const buf = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Whether one more block can be written (it is given back at once). */
function canWrite(): boolean {
  const p = join(mnt, 'probe');
  try {
    writeFileSync(p, Buffer.alloc(1024));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(p, { force: true });
  }
}

after(async () => {
  if (mounted) {
    // best effort if a test failed half-way: remove what is left, then unmount
    rmSync(join(mnt, 'filler'), { force: true });
    for (const r of [join(mnt, 'root'), join(mnt, 'root2')]) {
      const listed = await runHull(r, ['ps', '-a', '-q', '--no-trunc']).catch(() => undefined);
      const ids = listed?.stdout.split('\n').filter(Boolean) ?? [];
      if (ids.length > 0) await runHull(r, ['rm', '-f', ...ids]).catch(() => undefined);
    }
    spawnSync('umount', [mnt]);
    if (spawnSync('mountpoint', ['-q', mnt]).status === 0) spawnSync('umount', ['-l', mnt]);
  }
  rmSync(base, { recursive: true, force: true });
});

describe('a full hull root', { skip }, () => {
  const ids: Record<string, string> = {};

  before(async () => {
    await ok('images'); // the root and its space reserve
  });

  test('the root has a space reserve', () => {
    assert.ok(existsSync(join(root, 'space-reserve')), 'no space-reserve file in the root');
  });

  test('a build whose layer does not fit names the path, the file system and the space it needed', async () => {
    const ctx = join(base, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox\nRUN echo small > /small\n');
    await ok('build', '-t', 'small', ctx);
    const need = Math.floor(free() / (1 << 20)) - 4; // fits in the step's overlay, not twice (overlay + layer tar)
    writeFileSync(join(ctx, 'Containerfile'), `FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=${need}\n`);
    const before = free();
    const r = await hull('build', '-t', 'big', ctx);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Containerfile:2: RUN dd .* failed: no space left on device writing the layer of this step/);
    assert.ok(r.stderr.includes(`${join(root, 'images')} is on file system ${mnt} (ext4 on /dev/loop`), r.stderr);
    assert.match(r.stderr, /which has [\d.]+ (B|KiB|MiB) free of [\d.]+ MiB, this needs [\d.]+ MiB/);
    // the step's container and the partial layer are gone: the space came back
    assert.ok(free() >= before - (1 << 20), `free space ${free()} after the failed build, ${before} before`);
    assert.deepEqual(await psAll(), []);
  });

  test('fill the disk: a container writing into its overlay until ENOSPC, then a filler file', async () => {
    ids.s1 = (await ok('run', '-d', '--name', 's1', 'busybox', 'sleep', '1000')).trim();
    ids.s2 = (
      await ok('run', '-d', '--name', 's2', 'busybox', 'sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done')
    ).trim();
    ids.e1 = (
      await ok('run', '-d', '--name', 'e1', 'busybox', 'sh', '-c', 'trap "exit 3" USR1; while :; do sleep 0.1; done')
    ).trim();
    ids.fill = (
      await ok(
        'run',
        '-d',
        '--name',
        'fill',
        'busybox',
        'sh',
        '-c',
        'dd if=/dev/zero of=/fill bs=1M; echo filled; exec sleep 1000',
      )
    ).trim();
    await logSays(ids.fill!, 'filled');
    fillUp(join(mnt, 'filler'));
    assert.equal(canWrite(), false, 'the file system still takes writes');
    assert.ok(existsSync(join(root, 'space-reserve')), 'the reserve went while the disk filled');
  });

  test('run on the full disk fails with the path and file system, and leaves nothing', async () => {
    const r = await hull('run', '-d', '--name', 's3', 'busybox', 'true');
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /no space left on device .*hull\.db is on file system/);
    assert.ok(r.stderr.includes(mnt), r.stderr);
    assert.ok(existsSync(join(root, 'space-reserve')), 'run used the reserve');
  });

  test('a container that exits on the full disk keeps its exit code', async () => {
    signalDirectly(ids.e1!, 'SIGUSR1');
    // conmon cannot write exits/<id> in the full root (it gives up there); its copy off the root has the code
    await waitFor(
      'conmon of e1 to exit',
      () => !spawnSync('pgrep', ['-f', `conmon .*-c ${ids.e1}`]).stdout.length,
      20_000,
    );
    assert.equal(
      existsSync(join(root, 'containers', ids.e1!, 'exits', ids.e1!)),
      false,
      'conmon wrote its exit file in the full root',
    );
    const e1 = await waitFor(
      'e1 recorded as exited',
      async () => {
        const e = (await psAll()).find((x) => x.Names === 'e1');
        return e?.State === 'exited' ? e : undefined;
      },
      20_000,
    );
    assert.match(e1.Status, /^Exited \(3\)/);
  });

  test('ps -a, inspect, exec and kill work', async () => {
    const names = (await psAll()).map((e) => e.Names).sort();
    assert.deepEqual(names, ['e1', 'fill', 's1', 's2']);
    assert.equal((await inspect('s1')).State.Running, true);
    assert.equal(await ok('exec', 's1', 'echo', 'hi'), 'hi\n');
    await ok('kill', 's1');
    assert.equal(
      (
        await waitFor('s1 to exit', async () => {
          const i = await inspect('s1');
          return i.State.Running ? undefined : i;
        })
      ).State.ExitCode,
      137,
    );
  });

  test('stop reports success and records the real exit code', async () => {
    assert.equal((await ok('stop', '-t', '10', 's2')).trim(), 's2');
    const s2 = await inspect('s2');
    assert.equal(s2.State.Status, 'exited');
    assert.equal(s2.State.ExitCode, 7, s2.State.Error);
  });

  test('rmi, builder prune, system prune and image prune work', async () => {
    assert.match(await ok('rmi', 'small'), /small/);
    await ok('builder', 'prune', '--all');
    const pruned = await ok('system', 'prune');
    for (const n of ['s1', 's2', 'e1'])
      assert.ok(!(await psAll()).some((e) => e.Names === n), `${n} survived system prune: ${pruned}`);
    await ok('image', 'prune');
  });

  test('rm -f gives the space back, and the reserve comes back', async () => {
    const before = free();
    assert.equal((await ok('rm', '-f', 'fill')).trim(), 'fill');
    assert.ok(free() > before + (20 << 20), `only ${free() - before} bytes came back`);
    rmSync(join(mnt, 'filler'));
    await ok('ps', '-a');
    assert.ok(existsSync(join(root, 'space-reserve')), 'the reserve was not made again');
    await ok('image', 'prune', '-a');
  });

  test('leaves nothing behind', async () => {
    const everyId = Object.values(ids);
    const leaks = await checkLeaks(root, everyId, async () =>
      (await ok('ps', '-a', '-q', '--no-trunc')).split('\n').filter(Boolean),
    );
    assert.equal(leaks.length, 0, formatLeaks(leaks));
    // conmon's exit records off the root go with their instances
    for (const id of everyId) {
      const left = spawnSync('sh', ['-c', `ls -d /run/hull/exits/*/${id} 2>/dev/null`], {
        encoding: 'utf8',
      }).stdout.trim();
      assert.equal(left, '', `exit record dir left: ${left}`);
    }
  });
});

describe('a full hull root without a space reserve', { skip }, () => {
  const ids: Record<string, string> = {};

  before(() => {
    root = join(mnt, 'root2');
    env = { HULL_SPACE_RESERVE: '0' };
  });

  test('fill the disk', async () => {
    ids.s1 = (await ok('run', '-d', '--name', 's1', 'busybox', 'sleep', '1000')).trim();
    ids.e1 = (
      await ok('run', '-d', '--name', 'e1', 'busybox', 'sh', '-c', 'trap "exit 3" USR1; while :; do sleep 0.1; done')
    ).trim();
    ids.fill = (
      await ok(
        'run',
        '-d',
        '--name',
        'fill',
        'busybox',
        'sh',
        '-c',
        'dd if=/dev/zero of=/fill bs=1M; echo filled; exec sleep 1000',
      )
    ).trim();
    assert.equal(existsSync(join(root, 'space-reserve')), false);
    await logSays(ids.fill!, 'filled');
    fillUp(join(mnt, 'filler'));
    assert.equal(canWrite(), false, 'the file system still takes writes');
  });

  test('ps -a and inspect show an exit they cannot record', async () => {
    signalDirectly(ids.e1!, 'SIGUSR1');
    const e1 = await waitFor(
      'e1 shown as exited',
      async () => {
        const e = (await psAll()).find((x) => x.Names === 'e1');
        return e?.State === 'exited' ? e : undefined;
      },
      20_000,
    );
    assert.match(e1.Status, /^Exited \(3\)/);
    assert.equal((await inspect('e1')).State.ExitCode, 3);
    assert.equal((await inspect('s1')).State.Running, true);
  });

  test('a write that cannot be made says which file system is full', async () => {
    const r = await hull('stop', 's1');
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`is on file system ${mnt} (ext4 on /dev/loop`), r.stderr);
    assert.equal((await inspect('s1')).State.Running, true, 'stop said it failed, but the instance stopped');
  });

  test("rm -f frees the container's space before it records the removal", async () => {
    const before = free();
    assert.equal((await ok('rm', '-f', 'fill')).trim(), 'fill');
    assert.ok(free() > before + (20 << 20), `only ${free() - before} bytes came back`);
    rmSync(join(mnt, 'filler'));
    await ok('rm', '-f', 's1', 'e1');
  });

  test('leaves nothing behind', async () => {
    const leaks = await checkLeaks(root, Object.values(ids), async () =>
      (await ok('ps', '-a', '-q', '--no-trunc')).split('\n').filter(Boolean),
    );
    assert.equal(leaks.length, 0, formatLeaks(leaks));
  });
});
