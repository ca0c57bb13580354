/**
 * End to end: what a build leaves behind is cleaned up. A `hull build` killed outright (kill -9) during
 * a RUN step leaves its step container running; the next hull command, whatever it is, removes it.
 * `hull builder prune` frees the space it reports (the layers only the build cache held).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('build-cleanup');
const work = mkdtempSync('/tmp/hull-test-build-cleanup-work-');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** Bytes under the hull root (apparent sizes, as the store counts them). */
function du(): number {
  const r = spawnSync('du', ['-sb', root.dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

describe('build clean-up', () => {
  test('kill -9 of a build during RUN: the next hull command (ps -a) removes the running step container', async () => {
    writeFileSync(join(work, 'Containerfile.killed'), 'FROM busybox\nRUN echo started; sleep 600\n');
    const child = spawn(
      process.execPath,
      ['--', DIST, '--root', root.dir, 'build', '-t', 'killed', '-f', join(work, 'Containerfile.killed'), work],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const closed = new Promise((r) => child.on('close', r));
    // the step's own output line, not the STEP header (which also contains the word)
    await waitFor('the RUN step to start', () => out.split('\n').includes('started'), 30_000);
    child.kill('SIGKILL');
    await closed;
    const conmon = () =>
      spawnSync('pgrep', ['-f', `conmon .*${root.dir}/`], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean);
    assert.equal(conmon().length, 1, 'the step container outlived its build');
    assert.equal(await root.ok('ps', '-a', '-q'), '', 'ps shows no step container');
    assert.deepEqual(await root.ids(), []);
    assert.deepEqual(conmon(), [], 'its supervisor is gone');
    await root.cleanupAndCheck();
  });

  test("builder prune frees the space it reports: the layers of a failed build's steps", async () => {
    writeFileSync(
      join(work, 'Containerfile.big'),
      'FROM busybox\nRUN head -c 8000000 /dev/urandom > /big\nRUN exit 3\n',
    );
    const r = await root.hull('build', '-t', 'big', '-f', join(work, 'Containerfile.big'), work);
    assert.equal(r.code, 1, r.stderr);
    const before = du();
    const pruned = JSON.parse(await root.ok('builder', 'prune', '-f', '--format', 'json')) as {
      CacheEntriesDeleted: number;
      SpaceReclaimed: number;
    };
    const after = du();
    assert.ok(pruned.CacheEntriesDeleted >= 1, JSON.stringify(pruned));
    // the layer's blob and its extracted directory (the next step mounted it)
    assert.ok(pruned.SpaceReclaimed >= 16_000_000, `reported ${pruned.SpaceReclaimed}`);
    const freed = before - after;
    assert.ok(
      Math.abs(freed - pruned.SpaceReclaimed) < 1 << 20,
      `reported ${pruned.SpaceReclaimed} bytes, du says ${freed} were freed`,
    );
    const again = await root.ok('builder', 'prune', '-f');
    assert.equal(again, 'Deleted build cache entries: 0\nTotal reclaimed space: 0.00MiB\n');
    await root.ok('run', '--rm', 'busybox', 'true');
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
