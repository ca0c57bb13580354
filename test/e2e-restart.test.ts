/**
 * End to end: restart policies (on-failure:N, always, unless-stopped, a user's stop) and the restore after a
 * host restart. The host restart is simulated: the engine takes its boot id from HULL_BOOT_ID, and the
 * instances' processes are killed beforehand (conmon first, so that no exit command runs), as a reboot would.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { exitHandled, HullRoot, jsonLines, waitFor } from './helpers/hull.js';

const root = new HullRoot('restart');
after(() => root.dispose());

/** Whether a pid is gone (or a zombie waiting to be reaped, which runs nothing). */
function gone(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

describe('restart policies', () => {
  test('--restart on-failure:2 with a failing command: two restarts, then exited', async () => {
    await root.ok('run', '-d', '--name', 'fails', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1');
    const i = await waitFor(
      'two restarts and the final exit',
      async () => {
        const x = await root.inspect('fails');
        return x.State.Status === 'exited' && x.RestartCount === 2 ? x : undefined;
      },
      15_000,
      150,
    );
    assert.equal(i.State.ExitCode, 1);
    assert.deepEqual(i.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    await exitHandled(i.Id); // the last exit's handler has decided: no third attempt
    const later = await root.inspect('fails');
    assert.equal(later.State.Status, 'exited');
    assert.equal(later.RestartCount, 2);
  });

  test('--restart on-failure does not restart a command that succeeds', async () => {
    await root.ok('run', '-d', '--name', 'succeeds', '--restart', 'on-failure', 'busybox', 'true');
    const exited = await waitFor('the exit', async () => {
      const x = await root.inspect('succeeds');
      return x.State.Status === 'exited' ? x : undefined;
    });
    await exitHandled(exited.Id);
    const i = await root.inspect('succeeds');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.RestartCount, 0);
  });

  test('--restart always restarts a command that ends, and one that is killed', async () => {
    await root.ok('run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sleep', '1');
    const first = (await root.inspect('always')).State.Pid;
    const i = await waitFor(
      'a restart',
      async () => {
        const x = await root.inspect('always');
        return x.RestartCount >= 1 && x.State.Status === 'running' ? x : undefined;
      },
      10_000,
      150,
    );
    assert.notEqual(i.State.Pid, first);
    // a kill is not a user's stop: it restarts too
    const before = (await root.inspect('always')).RestartCount;
    await root.hull('kill', 'always');
    await waitFor(
      'a restart after kill',
      async () => {
        const x = await root.inspect('always');
        return x.RestartCount > before && x.State.Status === 'running';
      },
      10_000,
      150,
    );
  });

  test('hull stop on an always container keeps it stopped', async () => {
    const r = await root.hull('stop', '-t', '0', 'always');
    assert.equal(r.code, 0, r.stderr);
    const stopped = await root.inspect('always');
    assert.equal(stopped.State.Status, 'exited');
    await exitHandled(stopped.Id); // conmon's exit command too: it finds the exit recorded and leaves it
    const later = await root.inspect('always');
    assert.equal(later.State.Status, 'exited');
    assert.equal(later.RestartCount, stopped.RestartCount);
    // start clears the user's stop: the policy applies again
    await root.ok('start', 'always');
    await waitFor(
      'a restart after start',
      async () => (await root.inspect('always')).RestartCount > later.RestartCount,
      10_000,
      150,
    );
    await root.ok('rm', '-f', 'always');
  });

  test('--restart unless-stopped restarts until stopped', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'unless',
      '--restart',
      'unless-stopped',
      'busybox',
      'sh',
      '-c',
      'sleep 0.3; exit 2',
    );
    await waitFor('a restart', async () => (await root.inspect('unless')).RestartCount >= 1, 10_000, 150);
    await root.ok('stop', '-t', '0', 'unless');
    const stopped = await root.inspect('unless');
    const n = stopped.RestartCount;
    await exitHandled(stopped.Id);
    const i = await root.inspect('unless');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.RestartCount, n);
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});

describe('after a host restart', () => {
  // its own root: its commands all carry the simulated boot id
  const boot = new HullRoot('boot', { HULL_BOOT_ID: 'boot-one' });
  after(() => boot.dispose());

  test('a restart=always container runs again; restart=no and user-stopped ones stay exited', async () => {
    await boot.ok('run', '-d', '--name', 'keeper', '--restart', 'always', 'busybox', 'sleep', '300');
    await boot.ok('run', '-d', '--name', 'plain', 'busybox', 'sleep', '300');
    await boot.ok('run', '-d', '--name', 'parked', '--restart', 'always', 'busybox', 'sleep', '300');
    await boot.ok('stop', '-t', '0', 'parked');
    await boot.ok('create', '--name', 'fresh', 'busybox', 'true');
    const keeper = await boot.inspect('keeper');
    const plain = await boot.inspect('plain');

    // the "reboot": every process goes, supervisors first so that none reports an exit
    for (const i of [keeper, plain]) {
      process.kill(i.Hull.SupervisorPid, 'SIGKILL');
      await waitFor(`conmon ${i.Hull.SupervisorPid} to die`, () => gone(i.Hull.SupervisorPid), 5000, 20);
      process.kill(i.State.Pid, 'SIGKILL');
      await waitFor(`pid ${i.State.Pid} to die`, () => gone(i.State.Pid), 5000, 20);
    }
    const fresh = await boot.inspect('fresh');
    if (fresh.Hull.SupervisorPid > 0 && !gone(fresh.Hull.SupervisorPid))
      process.kill(fresh.Hull.SupervisorPid, 'SIGKILL');

    boot.env.HULL_BOOT_ID = 'boot-two';
    const ps = jsonLines<{ Names: string; State: string }>(await boot.ok('ps', '-a', '--format', 'json'));
    const state = Object.fromEntries(ps.map((p) => [p.Names, p.State]));
    assert.deepEqual(state, { keeper: 'running', plain: 'exited', parked: 'exited', fresh: 'exited' });

    const k = await boot.inspect('keeper');
    assert.notEqual(k.State.Pid, keeper.State.Pid);
    assert.ok(!gone(k.State.Pid), 'the restarted container runs');
    assert.equal(await boot.ok('exec', 'keeper', 'echo', 'alive'), 'alive\n');
    const p = await boot.inspect('plain');
    assert.equal(p.State.Status, 'exited');
    assert.match(p.State.Error, /host restarted/);
    // the restart happens once: later commands on the same boot leave things be
    await boot.ok('ps');
    assert.equal((await boot.inspect('keeper')).State.Pid, k.State.Pid);
    // and the exited ones can be started again
    assert.equal(await boot.ok('start', 'plain'), 'plain\n');
    assert.equal((await boot.inspect('plain')).State.Status, 'running');
  });

  test('leaves nothing behind', () => boot.cleanupAndCheck());
});
