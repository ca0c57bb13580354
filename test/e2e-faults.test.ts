/**
 * End to end: crash safety. The CLI killed (SIGKILL) at many points of `run -d`, `run --rm` and `rm -f`; conmon
 * killed under a running container; a hull that died between recording a start and the runtime's start;
 * ten concurrent `run -d`. After each, the store must be consistent and every verb must still work.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DIST, exitHandled, HullRoot, jsonLines, waitFor } from './helpers/hull.js';

const root = new HullRoot('faults');
after(() => root.dispose());

interface PsEntry {
  ID: string;
  Names: string;
  State: string;
}
const psAll = async () => jsonLines<PsEntry>(await root.ok('ps', '-a', '--no-trunc', '--format', 'json'));

/** Start `hull ARGS` and SIGKILL it after `ms`; resolves once it is dead. */
function spawnAndKill(args: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, ...args], { stdio: 'ignore' });
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Fractions of a measured command's wall time at which to kill it. */
const FRACTIONS = [0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.2];
let delays: number[] = [];

describe('the CLI killed during run -d', () => {
  // node's and hull's start-up take most of a `run -d` (about 150 ms of 250 here, more on a loaded machine); then
  // the instance is recorded, its root filesystem mounted, conmon started and the container started. The kills
  // come at fractions of a measured `run -d`, so that they straddle all of it whatever the machine's speed.

  test('calibrate: how long one run -d takes', async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await root.hull('run', '-d', 'busybox', 'sleep', '60');
      assert.equal(r.code, 0, r.stderr);
      times.push(r.ms);
      await root.ok('rm', '-f', r.stdout.trim());
    }
    const t = Math.min(...times);
    delays = FRACTIONS.map((f) => Math.round(f * t));
    console.log(`# run -d takes ${t} ms; kills at ${delays.join(', ')} ms`);
  });

  test('every instance left behind is listed (created or running) and start, stop and rm work on it', async () => {
    for (const [n, ms] of delays.entries())
      await spawnAndKill(['run', '-d', '--name', `crash-${n}-${ms}`, 'busybox', 'sleep', '60'], ms);
    const left = (await psAll()).filter((p) => p.Names.startsWith('crash-'));
    const summary = left.map((p) => `${p.Names}:${p.State}`).join(' ');
    console.log(`# left behind: ${summary || 'nothing'}`);
    assert.ok(left.length > 0, 'at least one kill came after the instance was recorded');
    for (const p of left) assert.ok(p.State === 'created' || p.State === 'running', `${p.Names} is ${p.State}`);
    for (const p of left) {
      const start = await root.hull('start', p.Names);
      assert.equal(start.code, 0, `start ${p.Names} (${p.State}): ${start.stderr}`);
      const i = await root.inspect(p.Names);
      assert.equal(i.State.Status, 'running', p.Names);
      assert.ok(alive(i.State.Pid), `${p.Names}: its process runs`);
      assert.equal(await root.ok('exec', p.Names, 'echo', 'in'), 'in\n');
    }
    const names = left.map((p) => p.Names);
    const stop = await root.hull('stop', '-t', '0', ...names);
    assert.equal(stop.code, 0, `stop: ${stop.stderr}`);
    for (const p of JSON.parse(await root.ok('inspect', ...names)) as { Name: string; State: { Status: string } }[]) {
      assert.equal(p.State.Status, 'exited', p.Name);
    }
    const rm = await root.hull('rm', ...names);
    assert.equal(rm.code, 0, `rm: ${rm.stderr}`);
    assert.deepEqual(await root.ids(), []);
  });

  test('rm -f straight after the crash works too', async () => {
    for (const ms of delays.slice(3, 9))
      await spawnAndKill(['run', '-d', '--name', `crash-rm-${ms}`, 'busybox', 'sleep', '60'], ms);
    const left = (await psAll()).map((p) => p.Names);
    if (left.length > 0) {
      const r = await root.hull('rm', '-f', ...left);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual(await root.ids(), []);
  });

  test('nothing is left of them', () => root.cleanupAndCheck());
});

describe('other crashes', () => {
  test('the CLI killed during a foreground run --rm: the exit command still removes the instance', async () => {
    // killed once the container's own output shows the CLI is waiting on it in the foreground (not a fixed time,
    // which under load can land before the container exists)
    const child = spawn(
      process.execPath,
      ['--', DIST, '--root', root.dir, 'run', '--rm', '--name', 'fg', 'busybox', 'sh', '-c', 'echo up; sleep 1'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const closed = new Promise((r) => child.on('close', r));
    await waitFor('the container to print "up"', () => out.includes('up\n'), 30_000);
    child.kill('SIGKILL');
    await closed;
    await waitFor(
      "the instance to be removed by conmon's exit command",
      async () => (await root.ids()).length === 0,
      10_000,
      200,
    );
  });

  test('the CLI killed during rm -f: the next rm -f finishes the job', async () => {
    await root.ok('run', '-d', '--name', 'victim', 'busybox', 'sleep', '60');
    const t = (await root.hull('rm', '-f', 'victim')).ms;
    for (const ms of FRACTIONS.slice(1, 10).map((f) => Math.round(f * t))) {
      await root.ok('run', '-d', '--name', `victim-${ms}`, 'busybox', 'sleep', '60');
      await spawnAndKill(['rm', '-f', `victim-${ms}`], ms);
    }
    const left = (await psAll()).map((p) => `${p.Names}:${p.State}`);
    console.log(`# after the killed rm -f: ${left.join(' ') || 'nothing'}`);
    const names = (await psAll()).map((p) => p.Names);
    if (names.length > 0) {
      const r = await root.hull('rm', '-f', ...names);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual(await root.ids(), []);
  });

  test('kill -9 of conmon: ps -a shows the instance exited with a reason, and rm works', async () => {
    await root.ok('run', '-d', '--name', 'orphan', 'busybox', 'sleep', '300');
    const i = await root.inspect('orphan');
    assert.ok(alive(i.Hull.SupervisorPid));
    process.kill(i.Hull.SupervisorPid, 'SIGKILL');
    await waitFor('conmon to die', () => !alive(i.Hull.SupervisorPid), 5000, 20);
    const ps = await root.ok('ps', '-a');
    assert.match(ps, /Exited \(\d+\).*orphan/);
    const after = await root.inspect('orphan');
    assert.equal(after.State.Status, 'exited');
    assert.match(after.State.Error, /conmon|supervisor/);
    await waitFor('the container process to be killed', () => !alive(i.State.Pid), 5000, 50);
    assert.equal(await root.ok('rm', 'orphan'), 'orphan\n');
    assert.deepEqual(await root.ids(), []);
  });

  test('kill -9 of conmon, then start: the instance runs again', async () => {
    await root.ok('run', '-d', '--name', 'phoenix', 'busybox', 'sleep', '300');
    const i = await root.inspect('phoenix');
    process.kill(i.Hull.SupervisorPid, 'SIGKILL');
    await waitFor('conmon to die', () => !alive(i.Hull.SupervisorPid), 5000, 20);
    assert.equal(await root.ok('start', 'phoenix'), 'phoenix\n');
    const again = await root.inspect('phoenix');
    assert.equal(again.State.Status, 'running');
    assert.notEqual(again.Hull.SupervisorPid, i.Hull.SupervisorPid);
    assert.ok(alive(again.State.Pid));
    await root.ok('rm', '-f', 'phoenix');
  });

  test("a hull that died between recording the start and the runtime's start: start starts it", async () => {
    // the exact window is a few instructions wide; make it happen by recording the start without doing it
    await root.ok('create', '--name', 'halfway', 'busybox', 'sh', '-c', 'echo started; sleep 60');
    const db = new Database(join(root.dir, 'hull.db'), { timeout: 15000 });
    db.prepare("UPDATE instances SET state = 'running', started_at = ? WHERE name = 'halfway'").run(Date.now());
    db.close();
    assert.equal(await root.ok('start', 'halfway'), 'halfway\n');
    await waitFor('the output', async () => (await root.ok('logs', 'halfway')) === 'started\n', 5000);
    assert.match(await root.ok('top', 'halfway'), /sleep 60/);
    await root.ok('rm', '-f', 'halfway');
  });

  test('10 concurrent run -d: all succeed with distinct names, ps lists them, the store is consistent', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () => root.hull('run', '-d', 'busybox', 'sleep', '30')));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const ids = runs.map((r) => r.stdout.trim());
    assert.equal(new Set(ids).size, 10);
    const ps = jsonLines<PsEntry>(await root.ok('ps', '--no-trunc', '--format', 'json'));
    assert.equal(ps.length, 10);
    assert.deepEqual(ps.map((p) => p.ID).sort(), [...ids].sort());
    assert.equal(new Set(ps.map((p) => p.Names)).size, 10, 'distinct names');
    for (const p of ps) assert.equal(p.State, 'running');
    const inspected = JSON.parse(await root.ok('inspect', ...ids)) as {
      Id: string;
      State: { Status: string; Pid: number };
    }[];
    assert.deepEqual(
      inspected.map((i) => i.Id),
      ids,
    );
    for (const i of inspected) {
      assert.equal(i.State.Status, 'running');
      assert.ok(alive(i.State.Pid));
    }
    // and removed concurrently as well
    const rms = await Promise.all(ids.map((id) => root.hull('rm', '-f', id)));
    for (const r of rms) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await root.ids(), []);
  });

  test('concurrent verbs on one instance: exactly one stop wins, the others are no-ops', async () => {
    await root.ok('run', '-d', '--name', 'contended', 'busybox', 'sleep', '300');
    const stops = await Promise.all(Array.from({ length: 4 }, () => root.hull('stop', '-t', '0', 'contended')));
    for (const r of stops) assert.equal(r.code, 0, r.stderr);
    await exitHandled((await root.inspect('contended')).Id); // conmon's exit command may still be on its way
    const evs = (await root.ok('events', '--since', '0', '--no-follow', '--format', 'json'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: { name: string } } })
      .filter((e) => e.Actor.Attributes.name === 'contended');
    assert.equal(evs.filter((e) => e.Action === 'die').length, 1, 'one die event');
    assert.equal((await root.inspect('contended')).State.Status, 'exited');
    await root.ok('rm', 'contended');
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
