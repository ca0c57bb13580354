/**
 * The daemon supervises the root's instances while it runs (src/engine/supervisor.ts): it runs their healthchecks
 * in-process (no detached `hull system health-monitor`) and applies their restart policies (conmon's exit command
 * leaves them to it), for instances the CLI starts as for its own; nothing is applied twice. Started, it resumes
 * the health monitoring of running instances (a monitor the CLI started yields to it); stopped, it hands the
 * healthchecks back to detached monitors and the CLI's mechanisms work again.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Daemon, startDaemon } from './helpers/daemon.js';
import { exitHandled, HullRoot, idsIn, waitFor } from './helpers/hull.js';
import { health as healthOf, monitors } from './helpers/health.js';

const root = new HullRoot('supervise');
const work = mkdtempSync('/tmp/hull-test-supervise-');
const socket = join(work, 'hull.sock');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

const health = (ref: string) => healthOf(root, ref);

/** The number of health probes recorded so far (the log keeps 5: count by their start times). */
async function probesAfter(ref: string, t: number): Promise<number> {
  const h = await health(ref);
  return (h?.Log ?? []).filter((l) => Date.parse(l.Start) > t).length;
}

async function stop(d: Daemon): Promise<number | null> {
  d.child.kill('SIGTERM');
  return d.exited;
}

const lease = () => join(root.dir, 'run', 'daemon.lease');

describe('the daemon supervises restart policies and healthchecks', () => {
  test('a CLI-mode health monitor yields to a daemon that starts; the daemon probes; stopped, it hands back', async () => {
    const id = idsIn(
      await root.ok(
        'run',
        '-d',
        '--name',
        'hc',
        '--health-cmd',
        'true',
        '--health-interval',
        '200ms',
        'busybox',
        'sleep',
        '1d',
      ),
    )[0]!;
    await waitFor('a detached monitor (no daemon yet)', () => monitors(id).length === 1 || undefined);
    await waitFor('healthy', async () => (await health('hc'))?.Status === 'healthy' || undefined);

    const daemon = await startDaemon(root, socket);
    assert.ok(existsSync(lease()), 'the daemon holds the lease');
    await waitFor('the detached monitor to yield to the daemon', () => monitors(id).length === 0 || undefined);
    // the daemon probes now (resumed at its start)
    const t = Date.now();
    await waitFor('probes by the daemon', async () => (await probesAfter('hc', t)) >= 2 || undefined, 20_000);
    assert.equal(monitors(id).length, 0);

    // an instance the CLI starts while the daemon runs gets no detached monitor: the daemon probes it
    const id2 = idsIn(
      await root.ok(
        'run',
        '-d',
        '--name',
        'hc2',
        '--health-cmd',
        'exit 1',
        '--health-interval',
        '200ms',
        '--health-retries',
        '1',
        'busybox',
        'sleep',
        '1d',
      ),
    )[0]!;
    await waitFor(
      'hc2 unhealthy (probed by the daemon)',
      async () => (await health('hc2'))?.Status === 'unhealthy' || undefined,
      20_000,
    );
    assert.equal(monitors(id2).length, 0, 'no detached monitor while the daemon runs');

    assert.equal(await stop(daemon), 0);
    assert.ok(!existsSync(lease()), 'the lease is let go');
    // the CLI's mechanism again: one detached monitor each
    await waitFor(
      'detached monitors again',
      () => (monitors(id).length === 1 && monitors(id2).length === 1) || undefined,
    );
    const t2 = Date.now();
    await waitFor(
      'probes by the detached monitor',
      async () => (await probesAfter('hc', t2)) >= 1 || undefined,
      20_000,
    );
    await root.ok('rm', '-f', 'hc', 'hc2');
    await waitFor('the monitors to end with rm', () => monitors(id).length + monitors(id2).length === 0 || undefined);
  });

  test('restart policies: applied once by the daemon, for its instances and the CLI’s', async () => {
    const daemon = await startDaemon(root, socket);
    await root.ok('run', '-d', '--name', 'fails', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3');
    const i = await waitFor(
      'two restarts and the final exit',
      async () => {
        const x = await root.inspect('fails');
        return x.State.Status === 'exited' && x.RestartCount === 2 ? x : undefined;
      },
      20_000,
      150,
    );
    assert.equal(i.State.ExitCode, 3);
    await exitHandled(i.Id);
    // exactly two restart events: neither conmon's exit command nor the daemon applied one twice
    const restarts = (await root.ok('events', '--since', '0', '--no-follow', '--format', 'json'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; Action: string })
      .filter((e) => e.id === i.Id && e.Action === 'restart');
    assert.equal(restarts.length, 2);
    assert.equal((await root.inspect('fails')).RestartCount, 2);

    // --restart always: killed, it comes back (the daemon's exit watch), with one more restart each time
    await root.ok('run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sleep', '1d');
    const first = await root.inspect('always');
    process.kill(first.State.Pid, 'SIGKILL');
    const back = await waitFor(
      'always to run again',
      async () => {
        const x = await root.inspect('always');
        return x.State.Running && x.State.Pid !== first.State.Pid ? x : undefined;
      },
      20_000,
      150,
    );
    assert.equal(back.RestartCount, 1);
    assert.equal(await stop(daemon), 0);

    // without a daemon the CLI's mechanism (conmon's exit command) restarts it again
    process.kill(back.State.Pid, 'SIGKILL');
    const again = await waitFor(
      'always to run again without the daemon',
      async () => {
        const x = await root.inspect('always');
        return x.State.Running && x.State.Pid !== back.State.Pid ? x : undefined;
      },
      20_000,
      150,
    );
    assert.equal(again.RestartCount, 2);
    await root.ok('rm', '-f', 'fails', 'always');
  });

  test('two daemons on one root: the second serves, and supervises only once the first stops', async () => {
    const first = await startDaemon(root, socket);
    const second = await startDaemon(root, join(work, 'other.sock'));
    assert.match(second.log(), /another hull daemon supervises the instances of .*this one takes over when it stops/);
    const holder = () => JSON.parse(readFileSync(lease(), 'utf8')).pid as number;
    assert.equal(holder(), first.child.pid);
    assert.equal(await stop(first), 0);
    await waitFor(
      'the second daemon to take the lease',
      () => (existsSync(lease()) && holder() === second.child.pid) || undefined,
    );
    // and it supervises: a --restart always container killed comes back
    await root.ok('run', '-d', '--name', 'always2', '--restart', 'always', 'busybox', 'sleep', '1d');
    const pid = (await root.inspect('always2')).State.Pid;
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'always2 to run again',
      async () => {
        const x = await root.inspect('always2');
        return (x.State.Running && x.State.Pid !== pid) || undefined;
      },
      20_000,
      150,
    );
    await root.ok('rm', '-f', 'always2');
    assert.equal(await stop(second), 0);
    assert.ok(!existsSync(lease()));
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
