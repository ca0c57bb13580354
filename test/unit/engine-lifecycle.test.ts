/**
 * The engine's lifecycle logic against a fake driver (test/helpers/fake-driver.ts) in a temporary root: no
 * root, no runtime, no mounts. Rollback of a failed create or start, restart policies, the simulated host
 * restart (HULL_BOOT_ID) and reconciliation with a supervisor that died.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { Engine } from '../../src/engine/engine.js';
import type { CreateRequest } from '../../src/engine/config.js';
import { createInstance } from '../../src/engine/lifecycle/create.js';
import { startInstance } from '../../src/engine/lifecycle/start.js';
import { stopInstance } from '../../src/engine/lifecycle/stop.js';
import { handleExit, refresh, restartDelay } from '../../src/engine/lifecycle/exit.js';
import { reconcileAll, restoreAfterBoot } from '../../src/engine/lifecycle/boot.js';
import { removeInstance } from '../../src/engine/lifecycle/remove.js';
import type { InstanceRecord } from '../../src/engine/store.js';
import type { RestartPolicy } from '../../src/common/instance.js';
import { FakeDriver } from '../helpers/fake-driver.js';

const base = mkdtempSync(join(tmpdir(), 'hull-unit-'));
let fake: FakeDriver;
let engine: Engine;
let seq = 0;

before(async () => {
  // a one-file rootfs as the image every instance uses
  const rootfs = join(base, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  writeFileSync(join(rootfs, 'bin/app'), '#!/bin/sh\n');
  await createTar({ file: join(base, 'rootfs.tar'), cwd: rootfs, portable: true }, ['bin']);
});

beforeEach(async () => {
  engine?.close();
  fake = new FakeDriver();
  const root = join(base, `root${seq++}`);
  engine = new Engine({ root, self: ['/bin/false'], drivers: { container: fake } });
  await engine.images.importTar(join(base, 'rootfs.tar'), 'app:1');
});

afterEach(() => {
  // every test removes what it made: no supervisor may be left
  assert.deepEqual(fake.liveSupervisors(), [], 'no fake supervisor left running');
});

after(() => {
  engine?.close();
  rmSync(base, { recursive: true, force: true });
});

function request(name: string, restart: RestartPolicy = { name: 'no', maxRetries: 0 }): CreateRequest {
  return { kind: 'container', image: 'app:1', name, command: ['/bin/app'], network: 'none', restart };
}

/** What conmon's exit command (`hull system instance-exited ID`) does. */
async function instanceExited(id: string): Promise<void> {
  const rec = engine.store.get(id);
  assert.ok(rec, `instance ${id} exists`);
  const info = engine.observedExit(rec);
  assert.ok(info, `instance ${rec.name} has an exit to report`);
  await handleExit(engine, rec, info);
}

async function run(name: string, restart?: RestartPolicy): Promise<InstanceRecord> {
  const rec = await createInstance(engine, request(name, restart));
  return startInstance(engine, rec);
}

const get = (id: string): InstanceRecord => {
  const r = engine.store.get(id);
  assert.ok(r, `record ${id}`);
  return r;
};
const instanceDirs = (): string[] => {
  try {
    return readdirSync(join(engine.root, 'containers'));
  } catch {
    return [];
  }
};

describe('create and start roll back what they made', () => {
  test('create failing after the driver made its directory leaves no record and no directory', async () => {
    fake.failNext('create', new Error('disk on fire'), { afterDir: true });
    await assert.rejects(createInstance(engine, request('half')), /disk on fire/);
    assert.deepEqual(engine.store.list(), []);
    assert.deepEqual(instanceDirs(), []);
    assert.ok(
      fake.calls.some((c) => c.startsWith('delete ')),
      'the driver was asked to delete what it made',
    );
    // the name is free again
    const rec = await createInstance(engine, request('half'));
    assert.equal(rec.state, 'created');
    await removeInstance(engine, rec, { force: true });
  });

  test('create failing before the driver did anything also leaves nothing', async () => {
    fake.failNext('create', new Error('no runtime'));
    await assert.rejects(createInstance(engine, request('early')), /no runtime/);
    assert.deepEqual(engine.store.list(), []);
    assert.deepEqual(instanceDirs(), []);
  });

  test('a failed start leaves the instance exited with the error, its runtime cleaned up', async () => {
    const rec = await createInstance(engine, request('nostart'));
    fake.failNext('start', Object.assign(new Error('exec format error'), { exitCode: 126 }));
    await assert.rejects(startInstance(engine, rec), /exec format error/);
    const r = get(rec.id);
    assert.equal(r.state, 'exited');
    assert.equal(r.exitCode, 126);
    assert.match(r.exitReason ?? '', /exec format error/);
    assert.ok(fake.calls.includes(`cleanupAfterExit ${rec.id}`));
    // and it can be started again (re-created by the driver first)
    const again = await startInstance(engine, r);
    assert.equal(again.state, 'running');
    await removeInstance(engine, again, { force: true });
    assert.deepEqual(instanceDirs(), []);
  });
});

describe('start and stop after crashes', () => {
  test('start re-creates a created instance whose supervisor died (a crashed create)', async () => {
    const rec = await createInstance(engine, request('crashed'));
    await fake.killSupervisor(rec.id);
    const r = await startInstance(engine, rec);
    assert.equal(r.state, 'running');
    assert.equal(fake.calls.filter((c) => c === `create ${rec.id}`).length, 2);
    assert.notEqual(r.supervisorPid, rec.supervisorPid);
    await removeInstance(engine, r, { force: true });
  });

  test('a record marked running whose process never started (hull died in between) is started by start', async () => {
    const rec = await createInstance(engine, request('limbo'));
    engine.store.transition(rec.id, ['created'], 'running', { startedAt: Date.now() }, 'start');
    assert.equal((await fake.status(engine.context(get(rec.id)))).status, 'created');
    await startInstance(engine, get(rec.id));
    assert.equal((await fake.status(engine.context(get(rec.id)))).status, 'running');
    assert.deepEqual(
      fake.calls.filter((c) => c.startsWith('start ')),
      [`start ${rec.id}`],
    );
    await removeInstance(engine, get(rec.id), { force: true });
  });

  test('stop of a created instance takes its supervisor down and leaves it exited 0', async () => {
    const rec = await createInstance(engine, request('never'));
    const r = await stopInstance(engine, rec, 5);
    assert.equal(r?.state, 'exited');
    assert.equal(r?.exitCode, 0);
    assert.deepEqual(fake.liveSupervisors(), []);
    await removeInstance(engine, get(rec.id), { force: true });
  });
});

describe('restart policies', () => {
  test('on-failure:2 restarts twice after failures, then leaves it exited; restartCount counts', async () => {
    const rec = await run('flaky', { name: 'on-failure', maxRetries: 2 });
    for (const expected of [1, 2]) {
      fake.exit(rec.id, 3);
      await instanceExited(rec.id);
      const r = get(rec.id);
      assert.equal(r.state, 'running', `restart ${expected}`);
      assert.equal(r.restartCount, expected);
    }
    fake.exit(rec.id, 3);
    await instanceExited(rec.id);
    const r = get(rec.id);
    assert.equal(r.state, 'exited');
    assert.equal(r.exitCode, 3);
    assert.equal(r.restartCount, 2);
    const restarts = engine.store.events(0).filter((e) => e.id === rec.id && e.action === 'restart');
    assert.equal(restarts.length, 2);
    await removeInstance(engine, r, { force: true });
  });

  test('on-failure does not restart after a clean exit', async () => {
    const rec = await run('clean', { name: 'on-failure', maxRetries: 0 });
    fake.exit(rec.id, 0);
    await instanceExited(rec.id);
    assert.equal(get(rec.id).state, 'exited');
    assert.equal(get(rec.id).restartCount, 0);
    await removeInstance(engine, get(rec.id), { force: true });
  });

  test('always restarts after any exit, but not after the user stopped it', async () => {
    const rec = await run('always', { name: 'always', maxRetries: 0 });
    fake.exit(rec.id, 0);
    await instanceExited(rec.id);
    assert.equal(get(rec.id).state, 'running');
    assert.equal(get(rec.id).restartCount, 1);
    const stopped = await stopInstance(engine, get(rec.id), 5);
    assert.equal(stopped?.state, 'exited');
    assert.equal(stopped?.exitCode, 143, 'SIGTERM');
    assert.equal(stopped?.stoppedByUser, true);
    assert.equal(get(rec.id).state, 'exited', 'no restart after a stop');
    await removeInstance(engine, get(rec.id), { force: true });
  });

  test('stop escalates to SIGKILL when the stop signal is ignored', async () => {
    const rec = await run('stubborn');
    fake.ignoreSignals.add('SIGTERM');
    const stopped = await stopInstance(engine, rec, 0.05);
    assert.equal(stopped?.exitCode, 137);
    assert.ok(fake.calls.includes(`kill ${rec.id} SIGKILL`));
    await removeInstance(engine, get(rec.id), { force: true });
  });

  test('the back-off doubles per quick restart, is capped at a minute, and resets after 10 s of running', () => {
    const r = (restartCount: number, ran: number) =>
      ({ restartCount, startedAt: 1000, finishedAt: 1000 + ran }) as InstanceRecord;
    assert.deepEqual(
      [0, 1, 2, 3].map((n) => restartDelay(r(n, 10))),
      [100, 200, 400, 800],
    );
    assert.equal(restartDelay(r(20, 10)), 60_000);
    assert.equal(restartDelay(r(20, 10_000)), 100);
  });

  describe('after a simulated host restart (HULL_BOOT_ID)', () => {
    const saved = process.env.HULL_BOOT_ID;
    after(() => {
      if (saved === undefined) delete process.env.HULL_BOOT_ID;
      else process.env.HULL_BOOT_ID = saved;
    });

    test('always and unless-stopped come back unless stopped by the user; restart=no stays exited', async () => {
      process.env.HULL_BOOT_ID = 'unit-boot-one';
      assert.deepEqual(await restoreAfterBoot(engine), [], 'the first boot id is only recorded');
      const keeper = await run('keeper', { name: 'always', maxRetries: 0 });
      const unless = await run('unless', { name: 'unless-stopped', maxRetries: 0 });
      const parked = await run('parked', { name: 'unless-stopped', maxRetries: 0 });
      await stopInstance(engine, parked, 5);
      const plain = await run('plain');
      const fresh = await createInstance(engine, request('fresh', { name: 'always', maxRetries: 0 }));
      // the "reboot": every supervisor and process is gone, none reported an exit
      for (const r of [keeper, unless, plain, fresh]) await fake.killSupervisor(r.id);

      process.env.HULL_BOOT_ID = 'unit-boot-two';
      const restarted = await restoreAfterBoot(engine);
      assert.deepEqual(restarted.sort(), ['fresh', 'keeper', 'unless']);
      const state = Object.fromEntries(engine.store.list().map((r) => [r.name, r.state]));
      assert.deepEqual(state, {
        keeper: 'running',
        unless: 'running',
        parked: 'exited',
        plain: 'exited',
        fresh: 'running',
      });
      assert.match(get(plain.id).exitReason ?? '', /host restarted/);
      assert.equal(get(plain.id).exitCode, 255);
      // once per boot
      assert.deepEqual(await restoreAfterBoot(engine), []);
      for (const r of engine.store.list()) await removeInstance(engine, r, { force: true });
      assert.deepEqual(instanceDirs(), []);
    });
  });
});

describe('reconciliation', () => {
  test('a running instance whose supervisor died is marked exited with the reason', async () => {
    const rec = await run('orphan');
    await fake.killSupervisor(rec.id);
    await reconcileAll(engine);
    const r = get(rec.id);
    assert.equal(r.state, 'exited');
    assert.equal(r.exitCode, 255);
    assert.equal(r.exitReason, 'its supervisor (fake-conmon) exited unexpectedly');
    const die = engine.store.events(0).find((e) => e.id === rec.id && e.action === 'die');
    assert.ok(die, 'a die event');
    await removeInstance(engine, r, { force: true });
  });

  test('an exit the supervisor recorded while no hull ran is picked up with its status', async () => {
    const rec = await run('quiet');
    fake.exit(rec.id, 42, 'OOM killed');
    const r = await refresh(engine, get(rec.id));
    assert.equal(r?.state, 'exited');
    assert.equal(r?.exitCode, 42);
    assert.equal(r?.exitReason, 'OOM killed');
    await removeInstance(engine, get(rec.id), { force: true });
  });

  test('--rm instances are removed when their exit is handled', async () => {
    const rec = await createInstance(engine, { ...request('gone'), autoRemove: true });
    await startInstance(engine, rec);
    fake.exit(rec.id, 0);
    await instanceExited(rec.id);
    assert.equal(engine.store.get(rec.id), undefined);
    assert.deepEqual(instanceDirs(), []);
  });

  test('both the foreground CLI and the exit command may handle one exit: it is recorded once', async () => {
    const rec = await run('twice', { name: 'no', maxRetries: 0 });
    fake.exit(rec.id, 1);
    const info = engine.observedExit(get(rec.id));
    assert.ok(info);
    const results = await Promise.all([handleExit(engine, get(rec.id), info), handleExit(engine, get(rec.id), info)]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(engine.store.events(0).filter((e) => e.id === rec.id && e.action === 'die').length, 1);
    await removeInstance(engine, get(rec.id), { force: true });
  });
});
