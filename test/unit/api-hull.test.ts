/**
 * The pure parts of hull's own API (src/api/hull) and of the metrics verbs: shapes, request validation against the
 * OpenAPI document, the error shape, event filters, long operations, Prometheus' text format, /proc parsers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, NoSuchInstanceError, StateError } from '../../src/common/errors.js';
import { ApiError } from '../../src/api/http.js';
import { errorBody, isHullPath } from '../../src/api/hull/errors.js';
import { INTERRUPTED, type Operation, Operations } from '../../src/api/hull/operations.js';
import { escapeLabel, exposition, parseExposition } from '../../src/api/hull/prometheus.js';
import { createRequestOf } from '../../src/api/hull/routes.js';
import { eventFilterOf, eventMatches, eventView, instanceShape } from '../../src/api/hull/shapes.js';
import { validatorOf } from '../../src/api/hull/validate.js';
import { cpuPercent } from '../../src/engine/metrics.js';
import { newInstanceRecord } from '../../src/engine/store.js';
import { parseMeminfo, parseNetDev, parseProcStat } from '../../src/host/metrics.js';
import type { InstanceConfig } from '../../src/common/instance.js';

const config = (extra: Partial<InstanceConfig> = {}): InstanceConfig =>
  ({
    command: ['sleep', '1'],
    env: [],
    tty: false,
    stdin: false,
    labels: { a: 'b' },
    restart: { name: 'on-failure', maxRetries: 3 },
    resources: { memory: 1 << 28 },
    network: 'bridge',
    networks: [{ name: 'hull' }],
    ...extra,
  }) as unknown as InstanceConfig;

test('instanceShape: both kinds in one shape, valid against the document', () => {
  const v = validatorOf('Instance');
  const base = {
    id: 'a'.repeat(64),
    name: 'x',
    image: 'busybox',
    imageId: 'sha256:' + 'b'.repeat(64),
    createdAt: 1e12,
  };
  const c = instanceShape(
    newInstanceRecord({
      ...base,
      kind: 'container',
      config: config({ container: { runtime: 'crun', privileged: false } as never }),
    }),
    {
      attachments: [{ network: 'hull', address: '10.88.0.5/16' }],
      published: [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      details: {},
      hasConsole: false,
    },
  );
  assert.ok(v(c), JSON.stringify(v.errors));
  assert.equal(c.kind, 'container');
  assert.equal(c.vm, null);
  assert.deepEqual(c.networks, [{ name: 'hull', address: '10.88.0.5' }]);
  assert.equal(c.restartPolicy, 'on-failure:3');
  const m = instanceShape(
    newInstanceRecord({ ...base, kind: 'vm', config: config({ vm: { accel: 'tcg' }, network: 'none', networks: [] }) }),
    {
      attachments: [],
      published: [],
      details: { Accel: 'tcg', Mode: 'agent', Cpus: 1, Memory: 512 },
      hasConsole: true,
    },
  );
  assert.ok(v(m), JSON.stringify(v.errors));
  assert.deepEqual(m.vm, {
    mode: 'agent',
    machine: null,
    accel: 'tcg',
    deviceModel: 'virtio',
    cpus: 1,
    memory: 512,
    kernel: null,
    disk: null,
    console: true,
  });
  assert.deepEqual(c.ports, [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  assert.deepEqual(m.networks, [{ name: 'none', address: null }]);
  assert.equal(m.resources.memory, 1 << 28);
});

test('create bodies: checked against CreateInstance, mapped to the engine request', () => {
  const r = createRequestOf({ kind: 'vm', image: 'busybox', restart: 'always', vm: { accel: 'tcg' }, env: ['A=1'] });
  assert.equal(r.kind, 'vm');
  assert.deepEqual(r.restart, { name: 'always', maxRetries: 0 });
  assert.deepEqual(r.vm, { accel: 'tcg' });
  assert.equal(createRequestOf({ image: 'busybox' }).kind, 'container');
  const bad = (body: unknown, re: RegExp) =>
    assert.throws(
      () => createRequestOf(body),
      (e: unknown) => e instanceof ApiError && e.status === 400 && re.test(e.message),
    );
  bad({}, /body: must have required property 'image'/);
  bad({ image: 'busybox', resources: { memory: 'lots' } }, /body\.resources\.memory: must be integer/);
  bad({ image: 'busybox', kind: 'pod' }, /body\.kind: must be equal to one of the allowed values \(container, vm\)/);
  bad({ image: 'busybox', env: ['NOEQUALS'] }, /body\.env\.0/);
  bad({ image: 'busybox', extra: 1 }, /\(extra\)/);
  bad({ image: 'busybox', vm: { accel: 'tcg' } }, /VM settings need "kind": "vm"/);
});

test('errors: one shape, with the HullError code or the status code', () => {
  const v = validatorOf('Error');
  const cases: [unknown, number, string][] = [
    [new NoSuchInstanceError('x'), 404, 'HULL_NOT_FOUND'],
    [new ConflictError('taken'), 409, 'HULL_CONFLICT'],
    [new StateError('not running'), 409, 'HULL_INVALID_STATE'],
    [new ApiError(405, 'no'), 405, 'HULL_METHOD_NOT_ALLOWED'],
    [new Error('boom'), 500, 'HULL_ERROR'],
  ];
  for (const [e, status, code] of cases) {
    const b = errorBody(e);
    assert.ok(v(b), JSON.stringify(v.errors));
    assert.equal(b.status, status);
    assert.equal(b.code, code);
  }
  assert.ok(isHullPath('/hull/v1/instances'));
  assert.ok(isHullPath('/metrics'));
  assert.ok(!isHullPath('/containers/json'));
});

test('events: the view and the filters (any value of a key; every key)', () => {
  const e = { seq: 4, time: 1e12, type: 'container', action: 'start', id: 'abc123def', name: 'web', attributes: {} };
  const v = validatorOf('EventMessage');
  assert.ok(v(eventView(e)));
  assert.ok(v({ subscribed: true, seq: 3 }));
  const f = (q: string) => eventMatches(e, eventFilterOf(new URLSearchParams(q)));
  assert.ok(f(''));
  assert.ok(f('type=container&action=stop&action=start'));
  assert.ok(f('instance=web'));
  assert.ok(f('instance=abc'));
  assert.ok(!f('instance=ab'), 'an id prefix needs 3 characters');
  assert.ok(!f('type=network'));
  assert.ok(!f('instance=web&action=die'));
});

test('operations: progress, success, failure, cancel, followers', async () => {
  const ops = new Operations();
  const seen: string[] = [];
  let finish!: () => void;
  const op = ops.start('pull', 'img', async (_signal, progress) => {
    progress.layer({ digest: 'sha256:1', state: 'transferring', current: 5, total: 10 });
    progress.layer({ digest: 'sha256:2', state: 'done', current: 7, total: 7 });
    progress.layer({ digest: 'sha256:1', state: 'done', current: 10, total: 10 });
    await new Promise<void>((r) => {
      finish = r;
    });
    return { imageId: 'x' };
  });
  assert.deepEqual(op.progress, {
    current: 17,
    total: 17,
    layers: [
      { digest: 'sha256:1', state: 'done', current: 10, total: 10 },
      { digest: 'sha256:2', state: 'done', current: 7, total: 7 },
    ],
    phase: null,
    log: [],
  });
  const ended = new Promise<void>((r) =>
    ops.follow(op.id, (o) => {
      seen.push(o.state);
      if (o.state !== 'running') r();
    }),
  );
  finish();
  await ended;
  assert.deepEqual(seen, ['succeeded']);
  const v = validatorOf('Operation');
  assert.ok(v(ops.get(op.id)), JSON.stringify(v.errors));
  assert.deepEqual(ops.get(op.id)!.result, { imageId: 'x' });
  assert.equal(ops.cancel(op.id), false);

  const slow = ops.start(
    'pull',
    'img2',
    (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')))),
  );
  const done = new Promise<void>((r) => ops.follow(slow.id, (o) => o.state !== 'running' && r()));
  assert.equal(ops.cancel(slow.id), true);
  await done;
  assert.equal(slow.state, 'cancelled');
  assert.equal(slow.error, 'stopped');
  const fail = ops.start('pull', 'img3', async () => {
    throw new Error('no such image');
  });
  await new Promise<void>((r) => ops.follow(fail.id, (o) => o.state !== 'running' && r()));
  assert.equal(fail.state, 'failed');
  assert.ok(fail.finished);
  assert.equal(ops.list().length, 3);
});

test('operations are recorded; a new Operations lists them, those that ran failed as interrupted', async () => {
  const rows = new Map<string, Record<string, unknown>>();
  const recorder = {
    putOperation: (op: Operation) => rows.set(op.id, JSON.parse(JSON.stringify(op)) as Record<string, unknown>),
    operations: () => [...rows.values()],
  };
  const ops = new Operations(recorder);
  const build = ops.start(
    'build',
    'ctx',
    async (_signal, progress) => {
      progress.phase(1, 3, 'Step 1/3 : FROM busybox');
      progress.line('hello');
      return new Promise<Record<string, unknown>>(() => undefined); // never ends: the daemon goes
    },
    { cancellable: false },
  );
  assert.equal(ops.cancel(build.id), false, 'a build cannot be cancelled');
  const pulled = ops.start('pull', 'img', async () => ({ imageId: 'x' }));
  await new Promise<void>((r) => ops.follow(pulled.id, (o) => o.state !== 'running' && r()));
  const p = (rows.get(build.id) as unknown as Operation).progress;
  assert.deepEqual([p.current, p.total, p.phase], [1, 3, 'Step 1/3 : FROM busybox'], 'a phase is recorded at once');
  // a restarted daemon
  const again = new Operations(recorder);
  const b = again.get(build.id)!;
  assert.equal(b.state, 'failed');
  assert.equal(b.error, INTERRUPTED);
  assert.ok(b.finished);
  assert.equal(again.get(pulled.id)!.state, 'succeeded');
  assert.equal((rows.get(build.id) as unknown as Operation).state, 'failed', 'the interruption is recorded');
  const v = validatorOf('Operation');
  for (const o of again.list()) assert.ok(v(o), JSON.stringify(v.errors));
});

test('Prometheus text: HELP and TYPE lines, escaped labels, parsed back', () => {
  const text = exposition([
    {
      name: 'hull_instances',
      help: 'Instances, by kind and state.',
      type: 'gauge',
      samples: [
        { labels: { kind: 'vm', state: 'running' }, value: 2 },
        { labels: { kind: 'container', state: 'odd "one"\\\n' }, value: 0 },
      ],
    },
    { name: 'hull_host_cpus', help: 'CPUs', type: 'gauge', samples: [{ value: 4 }] },
  ]);
  assert.equal(
    text,
    '# HELP hull_instances Instances, by kind and state.\n# TYPE hull_instances gauge\n' +
      'hull_instances{kind="vm",state="running"} 2\n' +
      'hull_instances{kind="container",state="odd \\"one\\"\\\\\\n"} 0\n' +
      '# HELP hull_host_cpus CPUs\n# TYPE hull_host_cpus gauge\nhull_host_cpus 4\n',
  );
  const p = parseExposition(text);
  assert.equal(p.types.get('hull_instances'), 'gauge');
  assert.equal(p.samples[1]!.labels.state, 'odd "one"\\\n');
  assert.equal(p.samples[2]!.value, 4);
  assert.equal(escapeLabel('a"b'), 'a\\"b');
  assert.throws(() => parseExposition('not a metric line at all'), /not a sample line/);
});

test('/proc parsers and CPU percentages', () => {
  const cpu = parseProcStat('cpu  100 50 200 1000 30 10 20 0 0 0\ncpu0 1 2 3\n');
  assert.deepEqual(cpu, { userSeconds: 1.5, systemSeconds: 2.3, idleSeconds: 10.3, totalSeconds: 14.1 });
  const mem = parseMeminfo(
    'MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n',
  );
  assert.deepEqual(mem, {
    totalBytes: 1024000,
    availableBytes: 409600,
    usedBytes: 614400,
    swapTotalBytes: 0,
    swapFreeBytes: 0,
  });
  const net = parseNetDev(
    'Inter-|   Receive                                                |  Transmit\n' +
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
      '    lo:  1234      10    0    0    0     0          0         0     1234      10    0    0    0     0       0          0\n' +
      '  eth0: 99 3 0 0 0 0 0 0 77 2 0 0 0 0 0 0\n',
  );
  assert.deepEqual(net, [
    { name: 'lo', rxBytes: 1234, rxPackets: 10, txBytes: 1234, txPackets: 10 },
    { name: 'eth0', rxBytes: 99, rxPackets: 3, txBytes: 77, txPackets: 2 },
  ]);
  const sample = (ns: number, at: number) => ({
    id: 'x',
    name: 'x',
    live: true,
    atNs: at,
    stats: { cpuUsageNs: ns, memoryUsage: 0, memoryLimit: 0, pids: 0, blkioRead: 0, blkioWrite: 0, netRx: 0, netTx: 0 },
  });
  assert.equal(cpuPercent(undefined, sample(5, 10)), 0);
  assert.equal(cpuPercent({ cpuUsageNs: 0, atNs: 0 }, sample(5e8, 1e9)), 50);
  assert.equal(cpuPercent({ cpuUsageNs: 0, atNs: 0 }, { ...sample(5e8, 1e9), live: false }), 0);
});
