// The state store: compare-and-set transitions, name uniqueness, lookups, events, across connections.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { StateStore, type InstanceRecord } from '../src/engine/store.js';
import { ConflictError, NotFoundError, StateError } from '../src/common/errors.js';
import type { InstanceConfig } from '../src/common/instance.js';

const root = mkdtempSync(join(tmpdir(), 'hull-test-store-'));
after(() => rmSync(root, { recursive: true, force: true }));

function record(id: string, name: string): InstanceRecord {
  return {
    id,
    name,
    kind: 'container',
    state: 'created',
    image: 'busybox',
    imageId: 'sha256:x',
    config: { command: ['true'] } as unknown as InstanceConfig,
    createdAt: Date.now(),
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    exitReason: null,
    oomKilled: false,
    pid: 0,
    supervisorPid: 0,
    restartCount: 0,
    stoppedByUser: false,
  };
}

test('a taken name is a conflict naming the holder', () => {
  const s = new StateStore(root);
  s.insert(record('a'.repeat(64), 'web'));
  assert.throws(
    () => s.insert(record('b'.repeat(64), 'web')),
    (e: unknown) => e instanceof ConflictError && /already in use by instance aaaaaaaaaaaa/.test(e.message),
  );
  s.close();
});

test('lookup by name, full id and unique prefix; ambiguous prefixes and unknown refs fail clearly', () => {
  const s = new StateStore(root);
  s.insert(record('ab' + '1'.repeat(62), 'one'));
  s.insert(record('ab' + '2'.repeat(62), 'two'));
  assert.equal(s.lookup('web').name, 'web');
  assert.equal(s.lookup('a'.repeat(64)).name, 'web');
  assert.equal(s.lookup('ab1').name, 'one');
  assert.throws(() => s.lookup('ab'), ConflictError);
  assert.throws(() => s.lookup('nosuch'), NotFoundError);
  s.close();
});

test('transitions are compare-and-set: only one of two connections wins', () => {
  const s1 = new StateStore(root);
  const s2 = new StateStore(root);
  const id = 'c'.repeat(64);
  s1.insert(record(id, 'cas'));
  s1.transition(id, ['created'], 'running', { startedAt: 1 });
  const first = s1.tryTransition(id, ['running', 'paused'], 'exited', { exitCode: 3 });
  const second = s2.tryTransition(id, ['running', 'paused'], 'exited', { exitCode: 9 });
  assert.equal(first?.exitCode, 3);
  assert.equal(second, undefined);
  assert.equal(s2.get(id)?.exitCode, 3);
  assert.throws(
    () => s2.transition(id, ['running'], 'paused', {}, 'pause'),
    (e: unknown) => e instanceof StateError && e.message === 'cannot pause instance cas: it is exited',
  );
  s1.close();
  s2.close();
});

test('events keep their order and filters', () => {
  const s = new StateStore(root);
  const before = s.lastEventSeq();
  s.addEvent('container', 'create', 'x', 'n', { image: 'busybox' });
  s.addEvent('container', 'start', 'x', 'n');
  const evs = s.events(before);
  assert.deepEqual(
    evs.map((e) => e.action),
    ['create', 'start'],
  );
  assert.equal(evs[0]!.attributes.image, 'busybox');
  assert.equal(s.events(before, { until: 0 }).length, 0);
  s.close();
});

test('OOMKilled: recorded with an exit, and a root made before the column gets it in place', () => {
  const old = mkdtempSync(join(tmpdir(), 'hull-test-store-old-'));
  try {
    // the instances table as it was before oom_killed, with an exited instance in it
    const db = new Database(join(old, 'hull.db'));
    db.exec(`CREATE TABLE instances (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, state TEXT NOT NULL,
      image TEXT NOT NULL, image_id TEXT NOT NULL, config TEXT NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER,
      finished_at INTEGER, exit_code INTEGER, exit_reason TEXT, pid INTEGER NOT NULL DEFAULT 0,
      supervisor_pid INTEGER NOT NULL DEFAULT 0, restart_count INTEGER NOT NULL DEFAULT 0, stopped_by_user INTEGER NOT NULL DEFAULT 0)`);
    db.prepare(`INSERT INTO instances (id, name, kind, state, image, image_id, config, created_at, exit_code)
      VALUES (?, 'before', 'container', 'exited', 'busybox', 'sha256:x', '{}', 1, 137)`).run('d'.repeat(64));
    db.close();
    const s1 = new StateStore(old);
    const s2 = new StateStore(old); // a second process opening it finds the column there
    assert.equal(s1.get('d'.repeat(64))?.oomKilled, false);
    const id = 'e'.repeat(64);
    s1.insert(record(id, 'hungry'));
    s1.transition(id, ['created'], 'running', { startedAt: 1 });
    s1.transition(id, ['running'], 'exited', { exitCode: 137, oomKilled: true });
    assert.equal(s2.get(id)?.oomKilled, true);
    s2.transition(id, ['exited'], 'created', {}, 'start');
    s2.transition(id, ['created'], 'running', { oomKilled: false });
    assert.equal(s1.get(id)?.oomKilled, false);
    s1.close();
    s2.close();
  } finally {
    rmSync(old, { recursive: true, force: true });
  }
});

test('records of the previous version (container settings at the top of the config) load in the current shape', () => {
  const s = new StateStore(root);
  const legacy = {
    image: 'busybox',
    imageId: 'sha256:x',
    command: ['true'],
    env: [],
    workdir: '/',
    user: '',
    hostname: 'h',
    tty: false,
    stdin: false,
    mounts: [],
    readOnly: false,
    privileged: true,
    capAdd: ['NET_ADMIN'],
    capDrop: [],
    noNewPrivileges: false,
    seccomp: 'unconfined',
    userns: null,
    resources: {},
    stopSignal: 'SIGTERM',
    stopTimeout: 10,
    restart: { name: 'no', maxRetries: 0 },
    autoRemove: false,
    labels: {},
    network: 'none',
    runtime: 'crun',
    ulimits: [{ type: 'nofile', soft: 100, hard: 100 }],
  };
  const ctr = { ...record('d'.repeat(64), 'old-container'), config: legacy as unknown as InstanceConfig };
  const vm = {
    ...record('e'.repeat(64), 'old-vm'),
    kind: 'vm' as const,
    config: { ...legacy, vm: { accel: 'tcg' } } as unknown as InstanceConfig,
  };
  s.insert(ctr);
  s.insert(vm);
  const c = s.get(ctr.id)!.config;
  assert.deepEqual(c.container, {
    runtime: 'crun',
    privileged: true,
    capAdd: ['NET_ADMIN'],
    capDrop: [],
    noNewPrivileges: false,
    seccomp: 'unconfined',
    userns: null,
    ulimits: [{ type: 'nofile', soft: 100, hard: 100 }],
  });
  for (const k of ['runtime', 'privileged', 'capAdd', 'capDrop', 'noNewPrivileges', 'seccomp', 'userns', 'ulimits']) {
    assert.ok(!(k in c), `${k} moved into the container section`);
    assert.ok(!(k in s.get(vm.id)!.config), `a VM carries no ${k}`);
  }
  assert.equal(c.command[0], 'true');
  assert.deepEqual(s.get(vm.id)!.config.vm, { accel: 'tcg' });
  assert.equal(s.get(vm.id)!.config.container, undefined);
  // a current record comes back as it was stored
  const current = { ...record('f'.repeat(64), 'current'), config: { ...c } };
  s.insert(current);
  assert.deepEqual(s.get(current.id)!.config, c);
  s.close();
});
