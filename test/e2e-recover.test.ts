/**
 * End to end through the CLI: a lost or damaged hull.db. A detached container (on the default network), an
 * exited one, a created one and a detached VM; then hull.db is (a) deleted with its -wal/-shm, (b) truncated to
 * 0 bytes, (c) overwritten with garbage. Each time `hull ps` and `hull run --name <a taken name>` refuse in one
 * line that says what was found and names `hull system recover`; recover brings every instance back in its state
 * (the running ones with their supervisors: exec, logs, stop with the real exit code). Then an instance whose
 * saved record is gone: recover cleans it up (supervisor, mounts, network, files). The leak check ends it all.
 * One VM boot in all.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { HullRoot, idsIn, waitFor } from './helpers/hull.js';
import { checkLeaks, formatLeaks, processLeaks } from './helpers/leaks.js';
import { findExecutable } from '../src/host/probe.js';
import { health, monitors } from './helpers/health.js';

const root = new HullRoot('recover', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const withVm = findExecutable('qemu-system-x86_64') !== null;
/** every instance this root had (the event log goes with the database, so the test keeps the list) */
const everyId = new Set<string>();
const RECOVER = /"hull --root \S+ system recover"/;

after(async () => {
  // a failed test may leave the database lost: recover first so that dispose can remove the instances
  await root.hull('system', 'recover').catch(() => undefined);
  await root.dispose();
});

function db(suffix = ''): string {
  return join(root.dir, `hull.db${suffix}`);
}

function instanceDirs(): string[] {
  return existsSync(join(root.dir, 'containers')) ? readdirSync(join(root.dir, 'containers')) : [];
}

/**
 * `hull ps` and `hull run --name web` refuse with one line that matches `what` and names the recover command,
 * and leave the database as it was (no new, empty one in its place).
 */
async function assertRefused(what: RegExp): Promise<void> {
  const before = instanceDirs().length;
  const dbBefore = existsSync(db()) ? readFileSync(db()) : null;
  for (const args of [['ps'], ['run', '--name', 'web', 'busybox', 'true']]) {
    const r = await root.hull(...args);
    assert.equal(r.code, args[0] === 'run' ? 125 : 1, `hull ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, what);
    assert.match(r.stderr, RECOVER);
  }
  assert.equal(instanceDirs().length, before, 'the refused run made nothing');
  assert.deepEqual(existsSync(db()) ? readFileSync(db()) : null, dbBefore, 'the database file is left as it was');
}

/** recover, then the instances are back in their states, usable as before. */
async function assertRecovered(vmRunning: boolean): Promise<string> {
  const out = await root.ok('system', 'recover');
  assert.match(out, /^recovered [0-9a-f]{12} web running$/m);
  assert.match(out, /^recovered [0-9a-f]{12} old exited \(3\)$/m);
  assert.match(out, /^recovered [0-9a-f]{12} fresh created$/m);
  if (withVm)
    assert.match(out, vmRunning ? /^recovered [0-9a-f]{12} vm1 running$/m : /^recovered [0-9a-f]{12} vm1 exited/m);
  const web = await root.inspect('web');
  assert.equal(web.State.Status, 'running');
  assert.ok(web.State.Pid > 0 && web.Hull.SupervisorPid > 0);
  assert.equal((await root.inspect('old')).State.ExitCode, 3);
  assert.equal((await root.inspect('old')).State.Status, 'exited');
  assert.equal((await root.inspect('fresh')).State.Status, 'created');
  assert.match(await root.ok('logs', 'web'), /^(started\n)+$/, 'one line per start');
  assert.equal((await root.ok('logs', 'old')).trim(), 'old');
  // the name is taken again, by the recovered instance
  const dup = await root.hull('run', '--name', 'web', 'busybox', 'true');
  assert.equal(dup.code, 125);
  assert.match(dup.stderr, /the name "web" is already in use/);
  // its runtime state, namespace and network attachment are its own again
  assert.equal(
    (await root.hull('exec', 'web', 'sh', '-c', 'grep -q web /etc/hosts && ip addr show eth0 | grep -q "inet "')).code,
    0,
  );
  assert.ok(existsSync(join(root.dir, 'networks', 'attachments', web.Id)));
  return out;
}

/** stop the recovered container: its real exit code, its network released; then start it for the next round. */
async function stopAndStartWeb(): Promise<void> {
  const id = (await root.inspect('web')).Id;
  await root.ok('stop', 'web');
  const st = await root.inspect('web');
  assert.equal(st.State.Status, 'exited');
  assert.equal(st.State.ExitCode, 7);
  assert.ok(!existsSync(join(root.dir, 'networks', 'attachments', id)), 'detached at exit');
  await root.ok('start', 'web');
}

describe('a lost or damaged hull.db', { timeout: 600_000 }, () => {
  test('instances in every state: running (a container and a VM), exited, created', async () => {
    for (const id of idsIn(
      await root.ok(
        'run',
        '-d',
        '--name',
        'web',
        'busybox',
        'sh',
        '-c',
        'trap "exit 7" TERM; echo started; sleep 1d & wait',
      ),
    ))
      everyId.add(id);
    const old = await root.hull('run', '--name', 'old', 'busybox', 'sh', '-c', 'echo old; exit 3');
    assert.equal(old.code, 3, old.stderr);
    for (const id of idsIn(await root.ok('create', '--name', 'fresh', 'busybox', 'true'))) everyId.add(id);
    if (withVm) {
      const vm = await root.hullWith(
        { timeoutMs: 300_000 },
        'run',
        '-d',
        '--isolation',
        'vm',
        '--name',
        'vm1',
        '--memory',
        '256m',
        'busybox',
        'sh',
        '-c',
        'echo vmstarted; sleep 1d',
      );
      assert.equal(vm.code, 0, vm.stderr);
      for (const id of idsIn(vm.stdout)) everyId.add(id);
    }
    for (const id of await root.ids()) everyId.add(id);
    assert.equal(everyId.size, withVm ? 4 : 3);
    for (const id of everyId)
      assert.ok(existsSync(join(root.dir, 'containers', id, 'instance.json')), 'each instance keeps its record');
  });

  test('(a) hull.db deleted with its -wal and -shm: refused, then recovered', async () => {
    for (const s of ['', '-wal', '-shm']) rmSync(db(s), { force: true });
    await assertRefused(
      /hull\.db is missing, but the root holds \d+ instance directories, \d+ supervisor processes \([^)]*conmon[^)]*\), \d+ mounts.* of \d+ instances/,
    );
    await assertRecovered(true);
    await stopAndStartWeb();
  });

  test('(b) hull.db truncated to 0 bytes: refused, then recovered', async () => {
    truncateSync(db(), 0);
    await assertRefused(/hull\.db is empty, but the root holds \d+ instance directories/);
    await assertRecovered(true);
    await stopAndStartWeb();
  });

  test('(c) garbage in hull.db: refused as unreadable, moved aside, recovered; the VM stops with its exit code', async () => {
    writeFileSync(db(), randomBytes(8192));
    await assertRefused(/the state database \S+hull\.db is unreadable \(file is not a database\)/);
    const out = await assertRecovered(true);
    const aside = /^moved the old database file aside: (\S+hull\.db\.corrupt-\S+)$/m.exec(out)?.[1];
    assert.ok(aside && existsSync(aside), out);
    await stopAndStartWeb();
    if (withVm) {
      assert.equal((await root.ok('logs', 'vm1')).trim(), 'vmstarted');
      assert.equal((await root.hull('exec', 'vm1', 'true')).code, 0);
      await root.ok('stop', 'vm1');
      const st = await root.inspect('vm1');
      assert.equal(st.State.Status, 'exited');
      assert.equal(st.State.ExitCode, 143);
    }
  });

  test('a running container with a healthcheck is monitored again after recover', async () => {
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
    everyId.add(id);
    await waitFor('healthy', async () => (await health(root, 'hc'))?.Status === 'healthy' || undefined);
    for (const s of ['', '-wal', '-shm']) rmSync(db(s), { force: true });
    assert.match(await root.ok('system', 'recover'), /^recovered [0-9a-f]{12} hc running$/m);
    // the rebuilt record starts over, and a monitor of the rebuilt run probes it to healthy again
    await waitFor('healthy after recover', async () => (await health(root, 'hc'))?.Status === 'healthy' || undefined);
    await waitFor('one monitor', () => monitors(id).length === 1 || undefined);
    await root.ok('rm', '-f', 'hc');
    await waitFor('no monitor after rm', () => monitors(id).length === 0 || undefined);
  });

  test('an instance without its saved record cannot be rebuilt: recover cleans it up (a container and a VM, running)', async () => {
    const doomed = idsIn(await root.ok('run', '-d', '--name', 'doomed', 'busybox', 'sleep', '1d'))[0]!;
    everyId.add(doomed);
    rmSync(join(root.dir, 'containers', doomed, 'instance.json'));
    // the VM's driver tells it apart by its own files and processes (the monitor, QEMU)
    const vm = withVm ? ((await root.inspect('vm1')).Id as string) : null;
    if (vm) {
      const st = await root.hullWith({ timeoutMs: 300_000 }, 'start', 'vm1');
      assert.equal(st.code, 0, st.stderr);
      assert.ok(
        readdirSync(join(root.dir, 'volumes', '.vm-disks')).some((f) => f.startsWith(vm)),
        'the VM has its root disk in the default pool',
      );
      rmSync(join(root.dir, 'containers', vm, 'instance.json'));
    }
    for (const s of ['', '-wal', '-shm']) rmSync(db(s), { force: true });
    await assertRefused(/hull\.db is missing, but the root holds/);
    const out = await root.ok('system', 'recover');
    assert.match(
      out,
      new RegExp(`^removed ${doomed.slice(0, 12)}: it has no saved record \\(instance\\.json\\)$`, 'm'),
    );
    assert.match(out, /^recovered [0-9a-f]{12} web running$/m);
    assert.ok(!(await root.ids()).includes(doomed));
    assert.ok(!existsSync(join(root.dir, 'containers', doomed)));
    assert.ok(!existsSync(join(root.dir, 'netns', doomed)));
    assert.ok(!existsSync(join(root.dir, 'networks', 'attachments', doomed)));
    assert.ok(!existsSync(join(root.dir, 'run', 'runc', doomed)));
    // conmon's exit command (`hull system instance-exited`) may still be on its way out: it finds no record
    await waitFor(
      'no process of the removed container',
      () => processLeaks(root.dir, [doomed]).every((l) => !l.what.includes(doomed)) || undefined,
    );
    if (vm) {
      assert.match(out, new RegExp(`^removed ${vm.slice(0, 12)}: it has no saved record \\(instance\\.json\\)$`, 'm'));
      assert.ok(!existsSync(join(root.dir, 'containers', vm)));
      // its root disk in the default pool is named by its id, and goes too
      assert.deepEqual(
        readdirSync(join(root.dir, 'volumes', '.vm-disks')).filter((f) => f.startsWith(vm)),
        [],
      );
      await waitFor(
        'no process of the removed VM',
        () => processLeaks(root.dir, [vm]).every((l) => !l.what.includes(vm)) || undefined,
      );
    }
    // and a healthy root has nothing to recover
    assert.match(await root.ok('system', 'recover'), /^nothing to recover/);
  });

  test('rm -f of everything leaves nothing behind', async () => {
    const ids = await root.ids();
    if (ids.length > 0) await root.ok('rm', '-f', ...ids);
    const leaks = await checkLeaks(root.dir, [...everyId], () => root.ids());
    assert.equal(leaks.length, 0, formatLeaks(leaks));
  });
});
