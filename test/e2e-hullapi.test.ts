/**
 * hull's own API (/hull/v1, /metrics) on `hull daemon`, against a private root: instances of both kinds (a VM
 * created, not booted: TCG boots are slow), the lifecycle, images with a pull as a long operation (a real
 * docker-registry), networks, volumes, events and exec over WebSocket, metrics as JSON and Prometheus text, and
 * errors in one shape. Every JSON answer is validated (ajv) against the OpenAPI document the daemon serves, which
 * must also be the one in the repository.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { release } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { type Daemon, startDaemon as startHullDaemon, stopIfRunning } from './helpers/daemon.js';
import { HullRoot, waitFor } from './helpers/hull.js';
import { type RunningRegistry, startDockerRegistry } from './helpers/registry.js';
import { openapi } from '../src/api/hull/openapi.js';
import { describeErrors, validatorOf } from '../src/api/hull/validate.js';
import { parseExposition } from '../src/api/hull/prometheus.js';

const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0 ? false : 'needs QEMU';
const root = new HullRoot('hullapi', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const work = mkdtempSync('/tmp/hull-test-hullapi-sock-');
const socket = join(work, 'hull.sock');
const startDaemon = (): Promise<Daemon> => startHullDaemon(root, socket);

interface Res {
  status: number;
  type: string;
  body: string;
  json: unknown;
}

function api(method: string, path: string, body?: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      { socketPath: socket, method, path, headers: data ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => {
          text += s;
        });
        res.on('end', () => {
          const type = String(res.headers['content-type'] ?? '');
          resolve({
            status: res.statusCode ?? 0,
            type,
            body: text,
            json: type.startsWith('application/json') && text ? JSON.parse(text) : undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The schema of an answer, from the document: paths[path][method].responses[status]. */
function responseSchema(path: string, method: string, status: number): object {
  const p = (openapi.paths as unknown as Record<string, Record<string, { responses: Record<string, unknown> }>>)[path];
  const r = p?.[method.toLowerCase()]?.responses[String(status)] as
    | { content?: Record<string, { schema: object }> }
    | undefined;
  assert.ok(r, `the document has no ${method} ${path} → ${status}`);
  const schema = r.content?.['application/json']?.schema;
  assert.ok(schema, `${method} ${path} → ${status} has no JSON schema`);
  return schema;
}

/** A request whose answer must have `status` and fit the document's schema for it. */
// biome-ignore lint/suspicious/noExplicitAny: an answer is checked against its schema, then read freely
async function call(method: string, template: string, path: string, status: number, body?: unknown): Promise<any> {
  const r = await api(method, `/hull/v1${path}`, body);
  assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
  if (status === 204) return undefined;
  const v = validatorOf(responseSchema(template, method, status));
  assert.ok(v(r.json), `${method} ${path} → ${status}: ${describeErrors(v.errors, 'answer')}\n${r.body}`);
  return r.json;
}

/** A WebSocket on the daemon's socket; messages collected as they come. */
function ws(path: string) {
  const sock = new WebSocket(`ws+unix://${socket}:/hull/v1${path}`);
  const text: unknown[] = [];
  const binary: Buffer[] = [];
  let closed: number | undefined;
  sock.on('message', (d: Buffer, isBinary: boolean) => {
    if (isBinary) binary.push(Buffer.from(d));
    else text.push(JSON.parse(d.toString('utf8')));
  });
  const closing = new Promise<number>((r) =>
    sock.on('close', (code: number) => {
      closed = code;
      r(code);
    }),
  );
  const opened = new Promise<void>((resolve, reject) => {
    sock.once('open', () => resolve());
    sock.once('error', reject);
  });
  return { sock, text, binary, opened, closing, closed: () => closed };
}

let daemon: Daemon;

describe('hull API (/hull/v1)', () => {
  let registry: RunningRegistry;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await stopIfRunning(daemon);
    await registry?.stop();
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('the OpenAPI document served is the one in the repository, and a valid 3.1 document', async () => {
    const r = await call('GET', '/openapi.json', '/openapi.json', 200);
    assert.deepEqual(r, JSON.parse(JSON.stringify(openapi)));
    assert.equal(r.openapi, '3.1.0');
    // every $ref resolves: compiling every component schema would throw otherwise
    for (const name of Object.keys(openapi.components.schemas)) validatorOf(name);
  });

  test('errors: 400, 404, 405, 409 in one documented shape', async () => {
    const v = validatorOf('Error');
    const check = async (method: string, path: string, status: number, body?: unknown) => {
      const r = await api(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
      assert.ok(v(r.json), `${method} ${path}: ${describeErrors(v.errors, 'answer')} ${r.body}`);
      assert.equal((r.json as { status: number }).status, status);
      return r.json as { code: string; message: string };
    };
    assert.equal((await check('GET', '/hull/v1/instances/nosuch', 404)).code, 'HULL_NOT_FOUND');
    assert.equal((await check('GET', '/hull/v1/nowhere', 404)).code, 'HULL_NOT_FOUND');
    await check('PUT', '/hull/v1/instances', 405);
    await check('POST', '/hull/v1/instances', 400, '{not json');
    const wrong = await check('POST', '/hull/v1/instances', 400, { image: 'busybox', tty: 'yes' });
    assert.match(wrong.message, /body\.tty/);
    const extra = await check('POST', '/hull/v1/instances', 400, { image: 'busybox', colour: 'red' });
    assert.match(extra.message, /colour/);
    assert.equal((await check('POST', '/hull/v1/instances', 404, { image: 'nosuch-image:1' })).code, 'HULL_NOT_FOUND');
    await check('GET', '/hull/v1/operations/nosuch', 404);
    // nothing half-made
    assert.deepEqual(await call('GET', '/instances', '/instances', 200), []);
  });

  test('a container and a VM in one list, with their kind and VM fields; get by name', async () => {
    const c = await call('POST', '/instances', '/instances', 201, {
      image: 'busybox',
      name: 'box',
      command: ['sleep', '1000'],
      labels: { app: 'api' },
    });
    assert.equal(c.kind, 'container');
    assert.equal(c.state, 'created');
    assert.equal(c.vm, null);
    assert.ok(c.container.runtime);
    if (!qemu) {
      const vm = await call('POST', '/instances', '/instances', 201, {
        kind: 'vm',
        image: 'busybox',
        name: 'guest',
        command: ['sleep', '600'],
        resources: { memory: 256 * 1024 * 1024 },
        vm: { accel: 'tcg' },
      });
      assert.equal(vm.kind, 'vm');
      assert.equal(vm.vm.accel, 'tcg');
      assert.equal(vm.vm.deviceModel, 'virtio');
      assert.equal(vm.resources.memory, 256 * 1024 * 1024);
      assert.equal(vm.container, null);
    }
    const all = await call('GET', '/instances', '/instances', 200);
    assert.deepEqual(all.map((i: { name: string }) => i.name).sort(), qemu ? ['box'] : ['box', 'guest']);
    const vms = await call('GET', '/instances', '/instances?kind=vm', 200);
    assert.deepEqual(
      vms.map((i: { name: string }) => i.name),
      qemu ? [] : ['guest'],
    );
    const got = await call('GET', '/instances/{id}', '/instances/box', 200);
    assert.equal(got.id, c.id);
    assert.deepEqual(got.labels, { app: 'api' });
  });

  test('the VM: started, exec over a WebSocket runs in its own kernel, the serial console opens and detaches', {
    skip: qemu,
  }, async () => {
    const vm = await call('POST', '/instances/{id}/start', '/instances/guest/start', 200);
    assert.equal(vm.state, 'running');
    assert.equal(vm.vm.console, true);
    // the driver's facts of the running VM (engine/describe.ts's view)
    assert.equal(vm.vm.accel, 'tcg');
    assert.equal(vm.vm.mode, 'agent');
    assert.ok(vm.vm.memory > 0 && vm.vm.cpus >= 1, JSON.stringify(vm.vm));
    const e = ws('/instances/guest/exec?cmd=uname&cmd=-r&stdin=0');
    assert.equal(await e.closing, 1000);
    const out = Buffer.concat(e.binary.filter((b) => b[0] === 1).map((b) => b.subarray(1))).toString('utf8');
    assert.match(out, /^\d+\.\d+/);
    assert.notEqual(out.trim(), release(), 'the guest runs its own kernel');
    assert.deepEqual(e.text.at(-1), { type: 'exit', exitCode: 0 });
    const con = ws('/instances/guest/console');
    await con.opened;
    con.sock.send(Buffer.from([0x1d]), { binary: true }); // Ctrl-], the detach key
    assert.equal(await con.closing, 1000);
    assert.deepEqual(con.text.at(-1), { type: 'exit', reason: 'detached' });
    // a container has no console: refused before the upgrade
    const none = ws('/instances/box/console');
    await assert.rejects(none.opened, /Unexpected server response: 400/);
    await call('DELETE', '/instances/{id}', '/instances/guest?force=1', 204);
  });

  test('lifecycle through the API, with its events over a WebSocket (filtered)', async () => {
    const ev = ws('/events?instance=box&type=container');
    await ev.opened;
    await waitFor('the subscription', () => ev.text.length > 0);
    const sub = validatorOf('EventMessage');
    assert.ok(sub(ev.text[0]), describeErrors(sub.errors, 'message'));
    assert.equal((ev.text[0] as { subscribed: boolean }).subscribed, true);

    const started = await call('POST', '/instances/{id}/start', '/instances/box/start', 200);
    assert.equal(started.state, 'running');
    assert.ok(started.startedAt);
    assert.equal((await api('POST', '/hull/v1/instances/box/start')).status, 409);
    assert.equal((await call('POST', '/instances/{id}/pause', '/instances/box/pause', 200)).state, 'paused');
    assert.equal((await call('POST', '/instances/{id}/unpause', '/instances/box/unpause', 200)).state, 'running');
    const rm = await api('DELETE', '/hull/v1/instances/box');
    assert.equal(rm.status, 409, 'a running instance is not removed without force');
    assert.equal((await call('POST', '/instances/{id}/stop', '/instances/box/stop?t=1', 200)).state, 'exited');
    assert.equal((await call('POST', '/instances/{id}/restart', '/instances/box/restart?t=1', 200)).state, 'running');
    await call('POST', '/instances/{id}/kill', '/instances/box/kill?signal=KILL', 200);
    // the kill is sent; the exit follows
    const killed = await waitFor('the exit after the kill', async () => {
      const r = await call('GET', '/instances/{id}', '/instances/box', 200);
      return r.state === 'exited' ? r : undefined;
    });
    assert.equal(killed.exitCode, 137);

    const want = ['start', 'pause', 'unpause', 'stop', 'start', 'die'];
    await waitFor(`the events ${want.join(', ')}`, () => {
      const actions = ev.text.slice(1).map((e) => (e as { action: string }).action);
      return want.every((a) => actions.includes(a));
    });
    const v = validatorOf('EventMessage');
    for (const e of ev.text) assert.ok(v(e), describeErrors(v.errors, 'event'));
    for (const e of ev.text.slice(1)) assert.equal((e as { name: string }).name, 'box');
    ev.sock.close();
    await ev.closing;
  });

  test('exec over a WebSocket: stdout and stderr apart, stdin, the exit code; a TTY; errors before the upgrade', async () => {
    await call('POST', '/instances/{id}/start', '/instances/box/start', 200);
    const q = (argv: string[], extra = '') =>
      `/instances/box/exec?${argv.map((a) => `cmd=${encodeURIComponent(a)}`).join('&')}${extra}`;
    const e = ws(q(['sh', '-c', 'read line; echo "got $line"; echo oops >&2; exit 3']));
    await e.opened;
    e.sock.send(Buffer.from('hello\n'), { binary: true });
    e.sock.send(JSON.stringify({ type: 'close-stdin' }));
    assert.equal(await e.closing, 1000);
    const out = (n: number) =>
      Buffer.concat(e.binary.filter((b) => b[0] === n).map((b) => b.subarray(1))).toString('utf8');
    assert.equal(out(1), 'got hello\n');
    assert.equal(out(2), 'oops\n');
    const v = validatorOf('ServerMessage');
    const last = e.text.at(-1);
    assert.ok(v(last), describeErrors(v.errors, 'message'));
    assert.deepEqual(last, { type: 'exit', exitCode: 3 });

    const t = ws(q(['sh', '-c', 'stty size'], '&tty=1&stdin=0&rows=33&cols=101'));
    assert.equal(await t.closing, 1000);
    const text = Buffer.concat(t.binary.map((b) => b.subarray(1))).toString('utf8');
    assert.match(text, /^33 101\r?\n$/);
    assert.deepEqual(t.text.at(-1), { type: 'exit', exitCode: 0 });

    const missing = ws(q(['/no/such/command']));
    assert.equal(await missing.closing, 1000);
    // docker exec's answer to a command that cannot start: its message on stderr, exit code 126
    assert.equal((missing.text.at(-1) as { exitCode: number }).exitCode, 126);
    const err = Buffer.concat(missing.binary.filter((b) => b[0] === 2).map((b) => b.subarray(1))).toString('utf8');
    assert.match(err, /\/no\/such\/command/);

    // refused before the upgrade, in hull's error shape
    const bad = ws('/instances/box/exec');
    await assert.rejects(bad.opened, /Unexpected server response: 400/);
    const gone = ws('/instances/nosuch/exec?cmd=true');
    await assert.rejects(gone.opened, /Unexpected server response: 404/);
  });

  test('attach over a WebSocket: the shell of a TTY instance, input, output, its exit code at the end', async () => {
    await call('POST', '/instances', '/instances', 201, {
      image: 'busybox',
      name: 'shell',
      command: ['sh'],
      tty: true,
      stdin: true,
    });
    await call('POST', '/instances/{id}/start', '/instances/shell/start', 200);
    const a = ws('/instances/shell/attach?rows=30&cols=90');
    await a.opened;
    const output = () => Buffer.concat(a.binary.map((b) => b.subarray(1))).toString('utf8');
    a.sock.send(Buffer.from('echo "in $((40+2))"\n'), { binary: true });
    await waitFor('the shell to answer', () => output().includes('in 42'));
    a.sock.send(Buffer.from('exit 4\n'), { binary: true });
    assert.equal(await a.closing, 1000);
    assert.ok(
      a.binary.every((b) => b[0] === 1),
      'a TTY has one stream',
    );
    assert.deepEqual(a.text.at(-1), { type: 'exit', exitCode: 4 });
    const after = await call('GET', '/instances/{id}', '/instances/shell', 200);
    assert.equal(after.state, 'exited');
    // attach to an instance that is not running: 409 before the upgrade
    const no = ws('/instances/shell/attach');
    await assert.rejects(no.opened, /Unexpected server response: 409/);
    await call('DELETE', '/instances/{id}', '/instances/shell', 204);
  });

  test('metrics: an instance and the host as JSON, and Prometheus text at /metrics', async () => {
    const m = await call('GET', '/instances/{id}/metrics', '/instances/box/metrics', 200);
    assert.equal(m.live, true);
    assert.ok(m.memoryBytes > 0, 'a running container uses memory');
    assert.ok(m.pids >= 1);
    const h = await call('GET', '/host/metrics', '/host/metrics', 200);
    assert.ok(h.cpu.count >= 1);
    assert.ok(h.memory.totalBytes > 0 && h.memory.availableBytes <= h.memory.totalBytes);
    assert.equal(h.disk.path, root.dir);
    assert.ok(h.disk.totalBytes > 0);
    assert.ok(h.network.some((i: { name: string }) => i.name === 'lo'));

    const r = await api('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const p = parseExposition(r.body);
    for (const s of p.samples) {
      assert.ok(p.types.has(s.name), `${s.name} has a TYPE line`);
      assert.ok(p.help.has(s.name), `${s.name} has a HELP line`);
    }
    const count = (kind: string, state: string) =>
      p.samples.find((s) => s.name === 'hull_instances' && s.labels.kind === kind && s.labels.state === state)?.value;
    assert.equal(count('container', 'running'), 1);
    assert.equal(count('vm', 'running'), 0);
    const mem = p.samples.find((s) => s.name === 'hull_instance_memory_bytes' && s.labels.name === 'box');
    assert.ok(mem && mem.value > 0);
    assert.equal(p.types.get('hull_instance_cpu_seconds_total'), 'counter');
    assert.ok(p.samples.some((s) => s.name === 'hull_host_memory_total_bytes' && s.value > 0));
    await call('DELETE', '/instances/{id}', '/instances/box?force=1', 204);
    assert.deepEqual(await call('GET', '/instances', '/instances', 200), []);
  });

  test("networks: create, list, get, remove; volumes: the root's", async () => {
    const n = await call('POST', '/networks', '/networks', 201, { name: 'apinet', labels: { a: 'b' } });
    assert.equal(n.name, 'apinet');
    assert.ok(n.subnet);
    const list = await call('GET', '/networks', '/networks', 200);
    assert.ok(list.some((x: { name: string }) => x.name === 'apinet'));
    assert.equal((await call('GET', '/networks/{name}', '/networks/apinet', 200)).id, n.id);
    assert.equal((await api('POST', '/hull/v1/networks', { name: 'apinet' })).status, 409);
    await call('DELETE', '/networks/{name}', '/networks/apinet', 204);
    assert.equal((await api('GET', '/hull/v1/networks/apinet')).status, 404);
    assert.deepEqual((await call('GET', '/volumes', '/volumes', 200)).volumes, []);
    // a volume made by the CLI on the same root is in the API's list
    await root.ok('volume', 'create', 'apivol');
    const vols = await call('GET', '/volumes', '/volumes', 200);
    assert.deepEqual(
      vols.volumes.map((v: { name: string; usedBy: string[] }) => [v.name, v.usedBy]),
      [['apivol', []]],
    );
    await root.ok('volume', 'rm', 'apivol');
  });

  test('storage pools: the default, a dir pool and a btrfs loop pool; a volume in one with a size; errors', async () => {
    const pools = await call('GET', '/storage/pools', '/storage/pools', 200);
    assert.deepEqual(
      pools.map((p: { name: string; driver: string }) => [p.name, p.driver]),
      [['default', 'dir']],
    );
    assert.ok(pools[0].size > 0 && pools[0].free > 0);
    const dir = await call('POST', '/storage/pools', '/storage/pools', 201, { name: 'apidir', driver: 'dir' });
    assert.equal(dir.quotas, false);
    assert.deepEqual(dir.volumes, []);
    // bad input: a dir pool has no size; an unknown driver; a taken name; the default pool stays
    const sized = await call('POST', '/storage/pools', '/storage/pools', 400, { name: 'x', driver: 'dir', size: 1 });
    assert.match(sized.message, /dir driver has no quotas/);
    await call('POST', '/storage/pools', '/storage/pools', 400, { name: 'x', driver: 'zfs' });
    await call('POST', '/storage/pools', '/storage/pools', 409, { name: 'apidir', driver: 'dir' });
    await call('DELETE', '/storage/pools/{name}', '/storage/pools/default', 409);
    await call('GET', '/storage/pools/{name}', '/storage/pools/nosuch', 404);
    const MiB = 1024 * 1024;
    const btr = await call('POST', '/storage/pools', '/storage/pools', 201, {
      name: 'apibtr',
      driver: 'btrfs',
      size: 128 * MiB,
    });
    assert.equal(btr.quotas, true);
    assert.ok(btr.size > 100 * MiB && btr.size <= 128 * MiB, String(btr.size));
    const v = await call('POST', '/volumes', '/volumes', 201, { name: 'apiq', pool: 'apibtr', size: 16 * MiB });
    assert.deepEqual([v.pool, v.size], ['apibtr', 16 * MiB]);
    assert.deepEqual((await call('GET', '/storage/pools/{name}', '/storage/pools/apibtr', 200)).volumes, ['apiq']);
    // a pool holding volumes stays
    const held = await call('DELETE', '/storage/pools/{name}', '/storage/pools/apibtr', 409);
    assert.match(held.message, /holds volumes \(apiq\)/);
    await call('DELETE', '/volumes/{name}', '/volumes/apiq', 204);
    await call('DELETE', '/storage/pools/{name}', '/storage/pools/apibtr', 204);
    await call('DELETE', '/storage/pools/{name}', '/storage/pools/apidir', 204);
    await call('GET', '/storage/pools/{name}', '/storage/pools/apibtr', 404);
    assert.deepEqual(
      (await call('GET', '/storage/pools', '/storage/pools', 200)).map((p: { name: string }) => p.name),
      ['default'],
    );
  });

  test('images: a pull as a long operation followed over a WebSocket, list, get, remove', async () => {
    registry = await startDockerRegistry();
    const ref = `${registry.host}/api/bb:1`;
    await root.ok('push', 'busybox', ref);
    const op = await call('POST', '/images/pull', '/images/pull', 202, { image: ref });
    assert.equal(op.kind, 'pull');
    const f = ws(`/operations/${op.id}`);
    assert.equal(await f.closing, 1000);
    const v = validatorOf('Operation');
    for (const m of f.text) assert.ok(v(m), describeErrors(v.errors, 'message'));
    const last = f.text.at(-1) as { state: string; result: { imageId: string }; error: string | null };
    assert.equal(last.state, 'succeeded', String(last.error));
    const got = await call('GET', '/operations/{id}', `/operations/${op.id}`, 200);
    assert.equal(got.state, 'succeeded');
    assert.ok((await call('GET', '/operations', '/operations', 200)).some((o: { id: string }) => o.id === op.id));

    const imgs = await call('GET', '/images', '/images', 200);
    assert.ok(imgs.some((i: { names: string[] }) => i.names.includes(ref)));
    const img = await call('GET', '/images/{name}', `/images/${encodeURIComponent(ref)}`, 200);
    assert.equal(img.id, last.result.imageId);
    assert.ok(img.layers.length >= 1);
    const removed = await call('DELETE', '/images/{name}', `/images/${encodeURIComponent(ref)}`, 200);
    assert.deepEqual(removed.untagged, [ref]);

    // a failing pull is an operation that failed, with its reason
    const bad = await call('POST', '/images/pull', '/images/pull', 202, { image: `${registry.host}/api/nosuch:1` });
    const fb = ws(`/operations/${bad.id}`);
    assert.equal(await fb.closing, 1000);
    const end = fb.text.at(-1) as { state: string; error: string };
    assert.equal(end.state, 'failed');
    assert.ok(end.error);
  });

  test('leaves nothing behind', async () => {
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    assert.equal(existsSync(socket), false);
    await root.cleanupAndCheck();
  });
});
