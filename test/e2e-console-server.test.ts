/**
 * The web console's server side on `hull daemon --listen`, against a private root and a real daemon: HTTPS with the
 * self-signed certificate the daemon makes, the one-time login link of `hull console url`, session and CSRF
 * cookies, the refusals (no session, no CSRF header, a foreign Origin, an ended or expired session, a WebSocket
 * from another origin), and the static files (compressed, with a CSP, the single-page app's fallback). The
 * console's files here are a small fixture ($HULL_CONSOLE_DIR), so that these tests do not depend on the UI build.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { type Daemon, startDaemon } from './helpers/daemon.js';
import { HullRoot, waitFor } from './helpers/hull.js';
import { describeErrors, validatorOf } from '../src/api/hull/validate.js';

const root = new HullRoot('console');
const work = mkdtempSync('/tmp/hull-test-console-');
const socket = join(work, 'hull.sock');
const site = join(work, 'console');
const INDEX = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hull</title><script type="module" src="/assets/app-1a2b3c.js"></script></head><body><div id="app">${'the console '.repeat(40)}</div></body></html>\n`;
const APP = 'export const hello = () => "hull console";\n'.repeat(100);

let daemon: Daemon | undefined;
let origin = '';
let ca: Buffer;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely
  json: any;
}

/** One HTTPS request to the daemon's TCP listener, trusting its self-signed certificate. */
function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const u = new URL(path, origin);
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        method,
        path: u.pathname + u.search,
        ca,
        headers: { ...(data ? { 'Content-Type': 'application/json' } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          const type = String(res.headers['content-type'] ?? '');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            text,
            json: type.startsWith('application/json') && text ? JSON.parse(text) : undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** Insist that `value` fits the OpenAPI document's schema `name`. */
function fits(name: string, value: unknown): void {
  const v = validatorOf(name);
  assert.ok(v(value), `${name}: ${describeErrors(v.errors)} in ${JSON.stringify(value)}`);
}

interface Login {
  session: string;
  csrf: string;
  /** the Cookie header a browser would send */
  cookie: string;
  setCookie: string[];
}

async function loginLink(): Promise<string> {
  return (await root.ok('console', 'url')).trim();
}

async function login(): Promise<Login> {
  const link = await loginLink();
  const r = await call('GET', link);
  assert.equal(r.status, 303, r.text);
  const setCookie = r.headers['set-cookie'] as string[];
  const value = (name: string) => {
    const c = setCookie.find((s) => s.startsWith(`${name}=`));
    assert.ok(c, `no ${name} cookie in ${setCookie.join(' | ')}`);
    return c.slice(name.length + 1).split(';')[0]!;
  };
  const session = value('hull_session');
  const csrf = value('hull_csrf');
  return { session, csrf, cookie: `hull_session=${session}; hull_csrf=${csrf}`, setCookie };
}

/** The headers a console page sends on a state-changing request. */
const pageHeaders = (l: Login): Record<string, string> => ({
  Cookie: l.cookie,
  'X-Hull-CSRF': l.csrf,
  Origin: origin,
});

/** A WebSocket to the listener with `headers`; resolves 'open' or the refusal's status. */
function wsOutcome(path: string, headers: Record<string, string>, wsOrigin?: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${origin.replace('https:', 'wss:')}${path}`, {
      ca,
      headers,
      ...(wsOrigin ? { origin: wsOrigin } : {}),
    });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(`refused ${res.statusCode}`);
    });
    ws.on('error', (e) => resolve(`error ${e.message}`));
  });
}

describe('the web console server', () => {
  before(async () => {
    mkdirSync(join(site, 'assets'), { recursive: true });
    writeFileSync(join(site, 'index.html'), INDEX);
    writeFileSync(join(site, 'assets', 'app-1a2b3c.js'), APP);
    daemon = await startDaemon(root, socket, ['--listen', '127.0.0.1:0'], { HULL_CONSOLE_DIR: site });
    const listenFile = join(root.dir, 'daemon', 'listen');
    const listen = await waitFor(
      'the daemon to record its TCP address',
      () => {
        try {
          return readFileSync(listenFile, 'utf8').trim() || undefined;
        } catch {
          return undefined;
        }
      },
      20_000,
      50,
    );
    origin = `https://${listen}`;
    // the certificate the daemon made on first start
    ca = readFileSync(join(root.dir, 'daemon', 'tls', 'cert.pem'));
  });

  after(async () => {
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('the login link sets the session and CSRF cookies, and works once', async () => {
    const link = await loginLink();
    assert.match(link, new RegExp(`^${origin}/login\\?token=[A-Za-z0-9_-]{43}$`));
    const r = await call('GET', link);
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/');
    const cookies = r.headers['set-cookie'] as string[];
    const session = cookies.find((c) => c.startsWith('hull_session='))!;
    const csrf = cookies.find((c) => c.startsWith('hull_csrf='))!;
    const attrs = (c: string) =>
      new Set(
        c
          .split(';')
          .slice(1)
          .map((a) => a.trim()),
      );
    assert.deepEqual(attrs(session), new Set(['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']));
    // the page reads the CSRF cookie: not HttpOnly
    assert.deepEqual(attrs(csrf), new Set(['Secure', 'SameSite=Strict', 'Path=/']));
    const again = await call('GET', link);
    assert.equal(again.status, 401);
    assert.match(again.text, /not valid/);
    assert.equal((await call('GET', '/login?token=made-up')).status, 401);
    assert.equal((await call('GET', '/login')).status, 401);
  });

  test('without a session: 401, in JSON for hull and docker paths', async () => {
    const hull = await call('GET', '/hull/v1/instances');
    assert.equal(hull.status, 401);
    assert.equal(hull.json.code, 'HULL_UNAUTHORIZED');
    const docker = await call('GET', '/v1.41/containers/json');
    assert.equal(docker.status, 401);
    assert.match(docker.json.message, /unauthorized/);
    const forged = await call('GET', '/hull/v1/instances', { Cookie: 'hull_session=forged; hull_csrf=forged' });
    assert.equal(forged.status, 401);
    assert.equal((await wsOutcome('/hull/v1/events', {}, origin)).startsWith('refused 401'), true);
  });

  test('with a session: reads freely; changes need the CSRF header and this origin', async () => {
    const l = await login();
    const list = await call('GET', '/hull/v1/instances', { Cookie: l.cookie });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json, []);
    const s = await call('GET', '/hull/v1/session', { Cookie: l.cookie });
    assert.equal(s.status, 200);
    fits('Session', s.json);
    const left = Date.parse(s.json.expiresAt) - Date.now();
    assert.ok(left > 11 * 3600_000 && left <= 12 * 3600_000, s.text);

    const body = { name: 'console-csrf' };
    const networks = async () =>
      ((await call('GET', '/hull/v1/networks', { Cookie: l.cookie })).json as { name: string }[]).map((n) => n.name);
    const refusals: Record<string, string>[] = [
      // no header
      { Cookie: l.cookie, Origin: origin },
      // a header that is not the cookie's
      { Cookie: l.cookie, 'X-Hull-CSRF': 'x'.repeat(43), Origin: origin },
      // another site's page (SameSite aside): the right header, a foreign Origin
      { ...pageHeaders(l), Origin: 'https://evil.example' },
    ];
    for (const headers of refusals) {
      const r = await call('POST', '/hull/v1/networks', headers, body);
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.code, 'HULL_CSRF');
      assert.equal(r.json.status, 403);
    }
    // docker's paths too (docker's error shape)
    const dockerPost = await call('POST', '/v1.41/networks/create', { Cookie: l.cookie }, { Name: 'console-csrf' });
    assert.equal(dockerPost.status, 403);
    assert.equal((await networks()).includes('console-csrf'), false, 'nothing was made');

    const made = await call('POST', '/hull/v1/networks', pageHeaders(l), body);
    assert.equal(made.status, 201, made.text);
    // no Origin (a same-origin fetch may omit it): the header alone suffices
    const { Origin: _o, ...noOrigin } = pageHeaders(l);
    const gone = await call('DELETE', '/hull/v1/networks/console-csrf', noOrigin);
    assert.equal(gone.status, 204, gone.text);
  });

  test('WebSockets with the session cookie need this origin', async () => {
    const l = await login();
    assert.equal(await wsOutcome('/hull/v1/events', { Cookie: l.cookie }, origin), 'open');
    assert.equal(await wsOutcome('/hull/v1/events', { Cookie: l.cookie }, 'https://evil.example'), 'refused 403');
    assert.equal(await wsOutcome('/hull/v1/events', { Cookie: l.cookie }), 'refused 403');
  });

  test('logout ends the session', async () => {
    const l = await login();
    const bad = await call('POST', '/hull/v1/session/logout', { Cookie: l.cookie });
    assert.equal(bad.status, 403, 'logout needs the CSRF header too');
    const out = await call('POST', '/hull/v1/session/logout', pageHeaders(l));
    assert.equal(out.status, 204, out.text);
    assert.ok((out.headers['set-cookie'] as string[]).every((c) => /Max-Age=0/.test(c)));
    assert.equal((await call('GET', '/hull/v1/session', { Cookie: l.cookie })).status, 401);
    assert.equal((await call('GET', '/hull/v1/instances', { Cookie: l.cookie })).status, 401);
  });

  test('an expired session is refused', async () => {
    const l = await login();
    assert.equal((await call('GET', '/hull/v1/session', { Cookie: l.cookie })).status, 200);
    // move every session's expiry into the past, as time would
    const db = new Database(join(root.dir, 'hull.db'), { timeout: 15000 });
    try {
      db.prepare('UPDATE console_sessions SET expires_at = ?').run(Date.now() - 1000);
    } finally {
      db.close();
    }
    assert.equal((await call('GET', '/hull/v1/session', { Cookie: l.cookie })).status, 401);
    assert.equal((await call('GET', '/hull/v1/instances', { Cookie: l.cookie })).status, 401);
  });

  test('static files: compressed, cached by hash, with a CSP; the app’s own paths get index.html', async () => {
    const index = await call('GET', '/', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(index.body).toString('utf8'), INDEX);
    assert.ok(index.body.length < INDEX.length / 2, `compressed: ${index.body.length} of ${INDEX.length}`);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    const csp = String(index.headers['content-security-policy']);
    const scriptSrc = csp.split(';').find((d) => d.trim().startsWith('script-src'));
    assert.ok(scriptSrc, csp);
    assert.doesNotMatch(scriptSrc, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(index.headers['cache-control'], 'no-cache');

    // a path of the app, as a browser navigates to it (gzip only)
    const deep = await call('GET', '/instances/some-name', { Accept: 'text/html', 'Accept-Encoding': 'gzip' });
    assert.equal(deep.status, 200);
    assert.equal(deep.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(deep.body).toString('utf8'), INDEX);
    // a path that is also docker's (GET /networks): a browser gets the app, an API client the API
    const page = await call('GET', '/networks', { Accept: 'text/html,application/xhtml+xml' });
    assert.equal(page.status, 200);
    assert.equal(page.text, INDEX);
    assert.equal((await call('GET', '/networks')).status, 401);

    const js = await call('GET', '/assets/app-1a2b3c.js', { 'Accept-Encoding': 'gzip' });
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.match(String(js.headers['cache-control']), /max-age=31536000.*immutable/);
    assert.equal(gunzipSync(js.body).toString('utf8'), APP);
    const plain = await call('GET', '/assets/app-1a2b3c.js');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.text, APP);
    const cached = await call('GET', '/assets/app-1a2b3c.js', { 'If-None-Match': String(js.headers.etag) });
    assert.equal(cached.status, 304);
    assert.equal((await call('GET', '/assets/missing.js')).status, 404);
    assert.equal((await call('GET', '/assets/..%2f..%2fhull.db')).status, 404);
  });

  /** The messages of a WebSocket with the session, until `enough` says so (then closes it); JSON-parsed. */
  async function frames(
    l: Login,
    path: string,
    enough: (got: unknown[]) => boolean,
    onOpen?: () => void,
  ): Promise<unknown[]> {
    const ws = new WebSocket(`${origin.replace('https:', 'wss:')}${path}`, {
      ca,
      headers: { Cookie: l.cookie },
      origin,
    });
    const got: unknown[] = [];
    return new Promise((resolve, reject) => {
      ws.on('open', () => onOpen?.());
      ws.on('message', (data) => {
        got.push(JSON.parse(String(data)));
        if (enough(got)) {
          ws.close();
          resolve(got);
        }
      });
      ws.on('close', () => resolve(got));
      ws.on('unexpected-response', (_q, res) => reject(new Error(`${path}: refused ${res.statusCode}`)));
      ws.on('error', reject);
    });
  }

  /** A counter of the daemon's /metrics. */
  async function counter(l: Login, name: string): Promise<number> {
    const r = await call('GET', '/metrics', { Cookie: l.cookie });
    assert.equal(r.status, 200);
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
    assert.ok(m, `no ${name} in /metrics`);
    return Number(m[1]);
  }

  test('live stats: 20 watchers of one instance cost one sample per interval', async () => {
    const l = await login();
    const id = (
      await root.ok('run', '-d', '--network', 'none', '--name', 'watched', 'busybox', 'sleep', '1000')
    ).trim();
    const before = await counter(l, 'hull_live_instance_samples_total');
    const watchers = Array.from({ length: 20 }, () =>
      frames(l, `/hull/v1/instances/watched/stats/stream`, (got) => got.length >= 3),
    );
    const all = await Promise.all(watchers);
    const after = await counter(l, 'hull_live_instance_samples_total');
    const times = new Set<string>();
    for (const got of all) {
      assert.equal(got.length, 3);
      for (const f of got) fits('InstanceMetrics', f);
      for (const f of got as { id: string; live: boolean; time: string; memoryBytes: number }[]) {
        assert.equal(f.id, id);
        assert.equal(f.live, true);
        assert.ok(f.memoryBytes > 0);
        times.add(f.time);
      }
    }
    // every watcher got frames of the same samples: the instance was sampled once per interval, not per watcher
    // (at most one more sample: a tick under way as the last watcher left)
    assert.ok(after - before <= times.size + 1, `${after - before} samples for ${times.size} intervals`);
    assert.ok(after - before < 20, `${after - before} samples`);

    // all instances in one frame; the host's figures
    const [allFrame] = (await frames(l, '/hull/v1/stats/stream', (g) => g.length >= 1)) as {
      instances: { id: string }[];
    }[];
    fits('StatsFrame', allFrame);
    assert.deepEqual(
      allFrame!.instances.map((i) => i.id),
      [id],
    );
    const [host] = (await frames(l, '/hull/v1/host/metrics/stream', (g) => g.length >= 1)) as {
      cpu: { count: number };
    }[];
    assert.ok(host!.cpu.count > 0);
    fits('HostMetrics', host);
    // the clients left: nothing is watched, nothing sampled
    await waitFor('the watchers to be gone', async () => (await counter(l, 'hull_live_watchers')) === 0, 10_000, 50);
  });

  test('events: ten followers share one reader of the store', async () => {
    const l = await login();
    const reads0 = await counter(l, 'hull_live_event_reads_total');
    const t0 = process.hrtime.bigint();
    let subscribed = 0;
    let made: Promise<string> | undefined;
    const followers = Array.from({ length: 10 }, () =>
      frames(l, '/hull/v1/events?type=container&action=create', (got) => {
        if (got.length === 1 && ++subscribed === 10)
          made = root.ok('create', '--network', 'none', '--name', 'evented', 'busybox', 'true');
        return got.some((e) => (e as { name?: string }).name === 'evented');
      }),
    );
    const all = await Promise.all(followers);
    const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await made;
    const reads = (await counter(l, 'hull_live_event_reads_total')) - reads0;
    for (const got of all) assert.equal((got.at(-1) as { action: string }).action, 'create');
    // one read per 200 ms at most (timers only run late), whatever the number of followers
    assert.ok(reads <= elapsedMs / 200 + 2, `${reads} reads in ${Math.round(elapsedMs)} ms`);
    await root.ok('rm', 'evented');
  });

  test('logs stream: the tail, then lines as they come', async () => {
    const l = await login();
    await root.ok(
      'run',
      '-d',
      '--network',
      'none',
      '--name',
      'talker',
      'busybox',
      'sh',
      '-c',
      'echo first; echo oops >&2; exec sleep 1000',
    );
    await waitFor('the first lines', async () => (await root.ok('logs', 'talker')).includes('first'), 20_000, 50);
    let wrote: Promise<string> | undefined;
    const got = (await frames(
      l,
      '/hull/v1/instances/talker/logs?follow=1&tail=all&timestamps=1',
      (g) => g.some((f) => (f as { line: string }).line === 'second'),
      () => {
        // once following: a line written to the main process's stdout
        wrote = root.ok('exec', 'talker', 'sh', '-c', 'echo second > /proc/1/fd/1');
      },
    )) as { stream: string; time: string; line: string }[];
    await wrote;
    const lines = got.map((f) => `${f.stream}:${f.line}`);
    assert.ok(lines.includes('stdout:first'), lines.join(','));
    assert.ok(lines.includes('stderr:oops'), lines.join(','));
    assert.ok(lines.includes('stdout:second'), lines.join(','));
    for (const f of got) fits('LogFrame', f);
    for (const f of got) assert.match(f.time, /^\d{4}-\d\d-\d\dT/);
    const tail = (await frames(l, '/hull/v1/instances/talker/logs?tail=1', () => false)) as { line: string }[];
    assert.deepEqual(
      tail.map((f) => f.line),
      ['second'],
    );
  });

  test('PATCH resources: the memory limit changes in the running container’s cgroup', async () => {
    const l = await login();
    const limit = async () => {
      const pid = (await root.inspect('watched')).State.Pid as number;
      const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find((x) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(x));
      if (!line) return 'no memory cgroup';
      const path = line.split(':')[2]!;
      return readFileSync(`/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`, 'utf8').trim();
    };
    const want = 96 * 1024 * 1024;
    const refused = await call(
      'PATCH',
      '/hull/v1/instances/watched',
      { Cookie: l.cookie },
      { resources: { memory: want } },
    );
    assert.equal(refused.status, 403);
    assert.notEqual(await limit(), String(want));
    const r = await call('PATCH', '/hull/v1/instances/watched', pageHeaders(l), {
      resources: { memory: want, cpus: 0.5 },
    });
    assert.equal(r.status, 200, r.text);
    fits('Instance', r.json);
    assert.equal(r.json.resources.memory, want);
    assert.equal(r.json.resources.cpus, 0.5);
    assert.equal(await limit(), String(want));
    const bad = await call('PATCH', '/hull/v1/instances/watched', pageHeaders(l), { resources: { memory: 'lots' } });
    assert.equal(bad.status, 400);
  });

  test('image history; volumes created and removed', async () => {
    const l = await login();
    const h = await call('GET', '/hull/v1/images/busybox/history', { Cookie: l.cookie });
    assert.equal(h.status, 200, h.text);
    assert.ok(Array.isArray(h.json) && h.json.length >= 1);
    for (const step of h.json) fits('HistoryStep', step);
    const made = await call('POST', '/hull/v1/volumes', pageHeaders(l), { name: 'console-vol', labels: { a: 'b' } });
    assert.equal(made.status, 201, made.text);
    fits('Volume', made.json);
    assert.equal(made.json.name, 'console-vol');
    assert.deepEqual(made.json.labels, { a: 'b' });
    assert.equal((await call('POST', '/hull/v1/volumes', pageHeaders(l), { name: 'console-vol' })).status, 409);
    assert.equal((await call('GET', '/hull/v1/volumes/console-vol', { Cookie: l.cookie })).status, 200);
    assert.equal((await call('DELETE', '/hull/v1/volumes/console-vol', pageHeaders(l))).status, 204);
    assert.equal((await call('DELETE', '/hull/v1/volumes/console-vol', pageHeaders(l))).status, 404);
  });

  test('storage pools over the session: list, a dir pool made (with the CSRF header only) and removed', async () => {
    const l = await login();
    const list = await call('GET', '/hull/v1/storage/pools', { Cookie: l.cookie });
    assert.equal(list.status, 200, list.text);
    for (const p of list.json) fits('StoragePool', p);
    assert.equal(list.json[0].name, 'default');
    const body = { name: 'console-pool', driver: 'dir' };
    assert.equal(
      (await call('POST', '/hull/v1/storage/pools', { Cookie: l.cookie, Origin: origin }, body)).status,
      403,
    );
    const made = await call('POST', '/hull/v1/storage/pools', pageHeaders(l), body);
    assert.equal(made.status, 201, made.text);
    fits('StoragePool', made.json);
    const vol = await call('POST', '/hull/v1/volumes', pageHeaders(l), { name: 'in-pool', pool: 'console-pool' });
    assert.equal(vol.status, 201, vol.text);
    assert.equal(vol.json.pool, 'console-pool');
    const one = await call('GET', '/hull/v1/storage/pools/console-pool', { Cookie: l.cookie });
    fits('StoragePool', one.json);
    assert.deepEqual(one.json.volumes, ['in-pool']);
    assert.equal((await call('DELETE', '/hull/v1/storage/pools/console-pool', pageHeaders(l))).status, 409);
    assert.equal((await call('DELETE', '/hull/v1/volumes/in-pool', pageHeaders(l))).status, 204);
    assert.equal((await call('DELETE', '/hull/v1/storage/pools/console-pool', pageHeaders(l))).status, 204);
    assert.equal((await call('GET', '/hull/v1/storage/pools/console-pool', { Cookie: l.cookie })).status, 404);
  });

  test('leaves nothing behind', async () => {
    daemon!.child.kill('SIGTERM');
    assert.equal(await daemon!.exited, 0);
    await root.cleanupAndCheck();
  });
});
