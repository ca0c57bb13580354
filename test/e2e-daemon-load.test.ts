/**
 * `hull daemon` under load and faults, through plain HTTP on its unix socket (no docker CLI): 50 concurrent
 * creations and 1,000 inspects all answered and nothing lost; the daemon killed with -9 in the middle of 50
 * creations and restarted leaves a consistent store; a `--restart always` container comes back when its process
 * dies while only the daemon runs; and the default network's bridge stays up between instances while a daemon
 * runs (for the CLI's instances too) and goes when the daemon stops.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { type Daemon, startDaemon as startHullDaemon } from './helpers/daemon.js';
import { HullRoot, TEST_NETWORK, waitFor } from './helpers/hull.js';

const root = new HullRoot('daemon-load');
const work = mkdtempSync('/tmp/hull-test-daemon-load-sock-');
const socket = join(work, 'hull.sock');
const startDaemon = (): Promise<Daemon> => startHullDaemon(root, socket);

interface ApiResult {
  status: number;
  body: string;
}

function api(method: string, path: string, body?: unknown): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        agent: false,
        headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => {
          text += s;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function stopDaemon(d: Daemon): Promise<number | null> {
  d.child.kill('SIGTERM');
  return d.exited;
}

/** The daemon's log lines that report failures (a request answered 4xx/5xx, a stream cut short). */
const errorLines = (log: string) =>
  log.split('\n').filter((l) => /: [45]\d\d |cut short|error/i.test(l) && !/^hull daemon: SIG/.test(l));

const createBody = (extra: Record<string, unknown> = {}) => ({
  Image: 'busybox',
  Cmd: ['true'],
  HostConfig: { NetworkMode: 'none' },
  ...extra,
});

/** Run `fn` over `items` with at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe('hull daemon under load and faults', () => {
  let daemon: Daemon | undefined;

  before(async () => {
    // busybox is built on first use: once, before the concurrent creations
    await root.ok('run', '--rm', '--network', 'none', 'busybox', 'true');
  });
  after(async () => {
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon);
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('50 concurrent creations and 1,000 inspects: all answered, nothing lost; then all removed', async () => {
    daemon = await startDaemon();
    const created = await Promise.all(
      Array.from({ length: 50 }, (_, i) => api('POST', `/v1.41/containers/create?name=load-${i}`, createBody())),
    );
    for (const r of created) assert.equal(r.status, 201, r.body);
    const ids = created.map((r) => (JSON.parse(r.body) as { Id: string }).Id);
    assert.equal(new Set(ids).size, 50);
    assert.deepEqual(new Set(await root.ids()), new Set(ids));

    const targets = Array.from({ length: 1000 }, (_, i) => ids[i % 50]!);
    const inspected = await pool(targets, 25, (id) => api('GET', `/v1.41/containers/${id}/json`));
    for (const [i, r] of inspected.entries()) {
      assert.equal(r.status, 200, r.body);
      assert.equal((JSON.parse(r.body) as { Id: string }).Id, targets[i]);
    }
    const list = JSON.parse((await api('GET', '/v1.41/containers/json?all=1')).body) as unknown[];
    assert.equal(list.length, 50);

    const removed = await pool(ids, 10, (id) => api('DELETE', `/v1.41/containers/${id}?force=1`));
    for (const r of removed) assert.equal(r.status, 204, r.body);
    assert.deepEqual(await root.ids(), []);
    assert.deepEqual(errorLines(daemon.log()), []);
    assert.equal(await stopDaemon(daemon), 0);
  });

  test('killed with -9 during 50 creations and restarted: every answered instance exists and goes, nothing half-made', async () => {
    daemon = await startDaemon();
    const answered: string[] = [];
    const d = daemon;
    let killed = false;
    const all = Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        api('POST', `/v1.41/containers/create?name=kill-${i}`, createBody()).then((r) => {
          if (r.status === 201) answered.push((JSON.parse(r.body) as { Id: string }).Id);
          // the kill lands while most creations are still in flight
          if (answered.length === 5 && !killed) {
            killed = true;
            d.child.kill('SIGKILL');
          }
          return r;
        }),
      ),
    );
    await all;
    await d.exited;
    assert.ok(killed, 'the daemon was killed mid-way');
    assert.ok(answered.length >= 5 && answered.length < 50, `answered ${answered.length}`);

    daemon = await startDaemon();
    // every instance the API answered 201 for is there, and goes
    for (const id of answered) {
      const r = await api('GET', `/v1.41/containers/${id}/json`);
      assert.equal(r.status, 200, r.body);
    }
    // what was made but not answered is whole too: the store lists it, inspect and removal work
    const listed = JSON.parse((await api('GET', '/v1.41/containers/json?all=1')).body) as { Id: string }[];
    for (const id of answered)
      assert.ok(
        listed.some((c) => c.Id === id),
        `${id} listed`,
      );
    assert.deepEqual(new Set(listed.map((c) => c.Id)), new Set(await root.ids()));
    for (const c of listed) {
      assert.equal((await api('GET', `/v1.41/containers/${c.Id}/json`)).status, 200);
      const r = await api('DELETE', `/v1.41/containers/${c.Id}?force=1`);
      assert.equal(r.status, 204, r.body);
    }
    assert.deepEqual(await root.ids(), []);
    // hull system recover finds nothing left to rebuild or clean up
    const rec = JSON.parse(await root.ok('system', 'recover', '--format', 'json')) as {
      Recovered: unknown[];
      Removed: unknown[];
      Failed: unknown[];
    };
    assert.deepEqual([rec.Recovered, rec.Removed, rec.Failed], [[], [], []]);
    assert.deepEqual(errorLines(daemon.log()), []);
    assert.equal(await stopDaemon(daemon), 0);
  });

  test('--restart always: the container comes back when its process dies while only the daemon runs', async () => {
    daemon = await startDaemon();
    const c = await api(
      'POST',
      '/v1.41/containers/create?name=always',
      createBody({ Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'always' } } }),
    );
    assert.equal(c.status, 201, c.body);
    const id = (JSON.parse(c.body) as { Id: string }).Id;
    assert.equal((await api('POST', `/v1.41/containers/${id}/start`)).status, 204);
    const state = async () =>
      JSON.parse((await api('GET', `/v1.41/containers/${id}/json`)).body) as {
        State: { Running: boolean; Pid: number };
        RestartCount: number;
      };
    const first = await state();
    assert.ok(first.State.Running && first.State.Pid > 0);
    process.kill(first.State.Pid, 'SIGKILL');
    const back = await waitFor(
      'the container to run again with a new process',
      async () => {
        const s = await state();
        return s.State.Running && s.State.Pid > 0 && s.State.Pid !== first.State.Pid ? s : null;
      },
      30_000,
    );
    assert.ok(back.RestartCount >= 1, `RestartCount ${back.RestartCount}`);
    assert.equal((await api('DELETE', `/v1.41/containers/${id}?force=1`)).status, 204);
    assert.deepEqual(errorLines(daemon.log()), []);
    assert.equal(await stopDaemon(daemon), 0);
  });

  test('the default bridge stays up between instances while the daemon runs (the CLI’s too), and goes when it stops', {
    skip: TEST_NETWORK.length > 0 ? 'HULL_TEST_NETWORK replaces the default network' : false,
  }, async () => {
    daemon = await startDaemon();
    const c = await api('POST', '/v1.41/containers/create', createBody({ HostConfig: {} }));
    assert.equal(c.status, 201, c.body);
    const id = (JSON.parse(c.body) as { Id: string }).Id;
    assert.equal((await api('POST', `/v1.41/containers/${id}/start`)).status, 204);
    assert.equal((await api('POST', `/v1.41/containers/${id}/wait`)).status, 200);
    assert.equal((await api('DELETE', `/v1.41/containers/${id}`)).status, 204);
    const bridge = (
      JSON.parse(await root.ok('network', 'inspect', 'hull')) as { Options: Record<string, string> }[]
    )[0]!.Options['com.docker.network.bridge.name']!;
    assert.ok(bridge, 'the network names its bridge');
    assert.ok(existsSync(`/sys/class/net/${bridge}`), 'the bridge stays while the daemon runs');
    // a CLI run on the same root sees the daemon's hold
    await root.ok('run', '--rm', 'busybox', 'true');
    assert.ok(existsSync(`/sys/class/net/${bridge}`), 'the bridge stays after a CLI instance leaves');
    assert.equal(await stopDaemon(daemon), 0);
    assert.ok(!existsSync(`/sys/class/net/${bridge}`), 'the bridge goes with the daemon');
    await root.cleanupAndCheck();
  });
});
