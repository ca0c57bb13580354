// Unit tier of `hull system recover` (src/engine/recover.ts): the store's checks of a damaged database file, the
// saved per-instance record, and the refusals before and after the store opens, on roots made of plain files.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { StateStore, type InstanceRecord } from '../src/engine/store.js';
import { Engine } from '../src/engine/engine.js';
import { StateCorruptError, StateLostError } from '../src/common/errors.js';
import type { InstanceConfig } from '../src/common/instance.js';
import { readInstanceFile, saveInstanceFile } from '../src/engine/instance-file.js';
import { checkAfterOpen, checkBeforeOpen, recoverInstances, setAsideDatabase } from '../src/engine/recover.js';
import { DRIVER_FACTORIES } from '../src/engine/drivers.js';

const base = mkdtempSync(join(tmpdir(), 'hull-test-recover-unit-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const newRoot = (): string => {
  const r = join(base, String(n++));
  mkdirSync(r);
  return r;
};

function record(id: string, name: string): InstanceRecord {
  return {
    id,
    name,
    kind: 'container',
    state: 'created',
    image: 'busybox',
    imageId: 'sha256:x',
    config: { command: ['true'], labels: { a: 'b' } } as unknown as InstanceConfig,
    createdAt: 1234,
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

/** A database with enough rows for several pages, checkpointed into the main file (the last close does it). */
function filledStore(root: string): void {
  const s = new StateStore(root);
  for (let i = 0; i < 200; i++) s.insert(record(i.toString(16).padStart(64, '0'), `n${i}`));
  s.close();
  assert.ok(!existsSync(join(root, 'hull.db-wal')));
}

test('a file that is not a database is refused in one line naming it and the recover command', () => {
  const root = newRoot();
  writeFileSync(join(root, 'hull.db'), 'this is not SQLite'.repeat(300));
  assert.throws(
    () => new StateStore(root),
    (e: unknown) =>
      e instanceof StateCorruptError &&
      e.code === 'HULL_STATE_CORRUPT' &&
      e.message.includes(join(root, 'hull.db')) &&
      e.message.includes(`hull --root ${root} system recover`) &&
      !e.message.includes('\n'),
  );
});

test('a truncated database is refused, even when its -wal holds the newest pages', () => {
  const root = newRoot();
  filledStore(root);
  const s = new StateStore(root);
  s.insert(record('f'.repeat(64), 'late')); // page 1 and a few more now in the -wal (no checkpoint before exit)
  const size = statSync(join(root, 'hull.db')).size;
  truncateSync(join(root, 'hull.db'), Math.floor(size / 2 / 4096) * 4096);
  assert.throws(
    () => new StateStore(root),
    (e: unknown) => e instanceof StateCorruptError && /truncated/.test(e.message),
  );
  s.close();
});

test('setAsideDatabase moves a damaged database and its -wal/-shm aside; a healthy one stays', () => {
  const healthy = newRoot();
  filledStore(healthy);
  assert.deepEqual(setAsideDatabase(healthy), []);
  assert.ok(existsSync(join(healthy, 'hull.db')));

  const root = newRoot();
  writeFileSync(join(root, 'hull.db'), 'garbage'.repeat(1000));
  writeFileSync(join(root, 'hull.db-wal'), 'x');
  const moved = setAsideDatabase(root);
  assert.equal(moved.length, 2);
  assert.match(moved[0]!, /hull\.db\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/);
  assert.match(moved[1]!, /-wal$/);
  assert.deepEqual(
    readdirSync(root)
      .filter((f) => f.startsWith('hull.db'))
      .sort(),
    moved.map((m) => m.slice(root.length + 1)).sort(),
  );
  new StateStore(root).close(); // a new one can be made now
});

test('the saved record round-trips; a missing, malformed or foreign one says why', () => {
  const dir = join(newRoot(), 'c');
  const id = 'a'.repeat(64);
  assert.match(readInstanceFile(dir, id) as string, /no saved record/);
  saveInstanceFile(dir, record(id, 'web'));
  assert.ok(!existsSync(dir), 'a later save does not make the directory of an instance removed meanwhile');
  saveInstanceFile(dir, record(id, 'web'), { create: true });
  const s = readInstanceFile(dir, id);
  assert.ok(typeof s !== 'string');
  assert.equal(s.name, 'web');
  assert.equal(s.createdAt, 1234);
  assert.deepEqual(s.config.labels, { a: 'b' });
  assert.match(readInstanceFile(dir, 'b'.repeat(64)) as string, /names another instance/);
  writeFileSync(join(dir, 'instance.json'), '{"id":');
  assert.match(readInstanceFile(dir, id) as string, /not valid JSON/);
  assert.deepEqual(readdirSync(dir), ['instance.json'], 'no temp files left');
});

test('a missing or empty database on a root with instance directories is refused before SQLite makes a new one', () => {
  const root = newRoot();
  checkBeforeOpen(root); // nothing there: a new root
  const id = 'c'.repeat(64);
  mkdirSync(join(root, 'containers', id), { recursive: true });
  assert.throws(
    () => checkBeforeOpen(root),
    (e: unknown) =>
      e instanceof StateLostError &&
      e.code === 'HULL_STATE_LOST' &&
      /hull\.db is missing, but the root holds 1 instance directory of 1 instance \(cccccccccccc\)/.test(e.message) &&
      e.message.includes('system recover'),
  );
  assert.ok(!existsSync(join(root, 'hull.db')));
  writeFileSync(join(root, 'hull.db'), '');
  assert.throws(() => checkBeforeOpen(root), /hull\.db is empty/);
});

test('a database without the record of an instance directory is refused after it opens', () => {
  const root = newRoot();
  const engine = new Engine({ root, self: [] });
  try {
    const known = 'd'.repeat(64);
    engine.store.insert(record(known, 'known'));
    mkdirSync(engine.instanceDir(known), { recursive: true });
    checkAfterOpen(engine);
    mkdirSync(engine.instanceDir('e'.repeat(64)));
    assert.throws(
      () => checkAfterOpen(engine),
      (e: unknown) =>
        e instanceof StateLostError &&
        /has no record of 1 instance directory of 1 instance \(eeeeeeeeeeee\)/.test(e.message),
    );
  } finally {
    engine.close();
  }
});

test("each driver finds its own remains (files, runtime state) and no other kind's; the refusal counts them", () => {
  const root = newRoot();
  const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(64)) as [string, string, string];
  mkdirSync(join(root, 'containers', a), { recursive: true });
  writeFileSync(join(root, 'containers', a, 'config.json'), '{}'); // an OCI bundle
  mkdirSync(join(root, 'containers', b), { recursive: true });
  writeFileSync(join(root, 'containers', b, 'vm.json'), '{}'); // a VM's settings
  mkdirSync(join(root, 'run', 'crun', c), { recursive: true }); // a runtime's state, nothing else
  const scope = { root, instancesDir: join(root, 'containers') };
  const found = new Map(DRIVER_FACTORIES.map((f) => [f.kind, f.create().recovery?.findRemains(scope) ?? []]));
  const claims = [...found].map(([kind, rs]) => [
    kind,
    rs
      .filter((r) => r.files || r.state.length > 0)
      .map((r) => `${r.id[0]}:${r.files ? 'files' : r.state.join()}`)
      .sort(),
  ]);
  assert.deepEqual(Object.fromEntries(claims), { container: ['a:files', 'c:crun'], vm: ['b:files'] });
  assert.throws(
    () => checkBeforeOpen(root),
    (e: unknown) =>
      e instanceof StateLostError &&
      /holds 2 instance directories, 1 runtime state of 3 instances \((?=.*aaaaaaaaaaaa)(?=.*bbbbbbbbbbbb)(?=.*cccccccccccc)/.test(
        e.message,
      ),
  );
});

test('recover tears an instance without a record down through the driver that found it, or through every driver when none did', async () => {
  const root = newRoot();
  const engine = new Engine({ root, self: [] });
  try {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(64)) as [string, string, string];
    for (const id of [a, b, c]) mkdirSync(engine.instanceDir(id), { recursive: true });
    writeFileSync(join(engine.instanceDir(a), 'config.json'), '{}');
    writeFileSync(join(engine.instanceDir(b), 'vm.json'), '{}');
    const calls: string[] = [];
    for (const d of engine.allDrivers()) {
      assert.ok(d.recovery, `${d.kind} has recovery`);
      d.recovery.tearDown = async (_scope, id, f) => {
        calls.push(`${d.kind} ${id[0]} ${f?.files ?? '-'}`);
        return [];
      };
    }
    const report = await recoverInstances(engine);
    assert.deepEqual(calls.sort(), ['container a true', 'container c -', 'vm b true', 'vm c -']);
    assert.deepEqual(report.removed.map((r) => [r.id[0], r.why, r.problems]).sort(), [
      ['a', 'it has no saved record (instance.json)', []],
      ['b', 'it has no saved record (instance.json)', []],
      ['c', 'it has no saved record (instance.json)', []],
    ]);
    for (const id of [a, b, c])
      assert.ok(!existsSync(engine.instanceDir(id)), 'the engine removes what the drivers left');
  } finally {
    engine.close();
  }
});
