/**
 * hull's API: builds and boots as long operations (`POST /hull/v1/images/build` with a tar context,
 * `POST /hull/v1/instances/{id}/start?async=1`), recorded in the store so that a restarted daemon lists them, and
 * those that were running when the daemon went are failed, "interrupted by a daemon restart". Every JSON answer is
 * validated against the OpenAPI document.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Header } from 'tar';
import { type Daemon, startDaemon, stopIfRunning } from './helpers/daemon.js';
import { HullRoot, waitFor } from './helpers/hull.js';
import { openapi } from '../src/api/hull/openapi.js';
import { describeErrors, validatorOf } from '../src/api/hull/validate.js';

const root = new HullRoot('hullapi-ops');
const work = mkdtempSync('/tmp/hull-test-hullapi-ops-');
const socket = join(work, 'hull.sock');
let daemon: Daemon | undefined;
after(async () => {
  await stopIfRunning(daemon);
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

interface Res {
  status: number;
  body: string;
  json: unknown;
}

function api(method: string, path: string, body?: Buffer, type = 'application/x-tar'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers: body ? { 'Content-Type': type } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        text += s;
      });
      res.on('end', () => {
        const json = String(res.headers['content-type'] ?? '').startsWith('application/json') && text;
        resolve({ status: res.statusCode ?? 0, body: text, json: json ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A request whose answer must have `status` and fit the document's schema for it. */
// biome-ignore lint/suspicious/noExplicitAny: an answer is checked against its schema, then read freely
async function call(method: string, template: string, path: string, status: number, body?: Buffer): Promise<any> {
  const r = await api(method, `/hull/v1${path}`, body);
  assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
  const p = (openapi.paths as unknown as Record<string, Record<string, { responses: Record<string, unknown> }>>)[
    template
  ];
  const resp = p?.[method.toLowerCase()]?.responses[String(status)] as
    | { content?: Record<string, { schema: object }> }
    | undefined;
  const schema = resp?.content?.['application/json']?.schema;
  assert.ok(schema, `the document has no JSON schema for ${method} ${template} → ${status}`);
  const v = validatorOf(schema);
  assert.ok(v(r.json), `${method} ${path} → ${status}: ${describeErrors(v.errors, 'answer')}\n${r.body}`);
  return r.json;
}

/** A tar of files. */
function tarOf(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, text] of Object.entries(files)) {
    const body = Buffer.from(text);
    const h = new Header({ path, mode: 0o644, size: body.length, type: 'File', mtime: new Date(), uid: 0, gid: 0 });
    const block = Buffer.alloc(512);
    h.encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

interface Op {
  id: string;
  kind: string;
  state: string;
  error: string | null;
  result: Record<string, unknown> | null;
  progress: { current: number; total: number; phase: string | null; log: string[] };
}

/** Poll an operation until it ends (checked against the schema each time). */
function ended(id: string): Promise<Op> {
  return waitFor(
    `operation ${id} to end`,
    async () => {
      const op = (await call('GET', '/operations/{id}', `/operations/${id}`, 200)) as Op;
      return op.state === 'running' ? undefined : op;
    },
    60_000,
    100,
  );
}

describe('hull API: builds and boots as long operations, recorded across daemon restarts', () => {
  test('POST /images/build: 202, the steps as progress, the output lines, the image as result', async () => {
    daemon = await startDaemon(root, socket);
    const ctx = tarOf({
      Containerfile: 'FROM busybox\nCOPY a.txt /a.txt\nRUN echo built-line && cat /a.txt\nCMD ["cat", "/a.txt"]\n',
      'a.txt': 'from the context\n',
    });
    const op = (await call('POST', '/images/build', '/images/build?t=ops-built:1', 202, ctx)) as Op;
    assert.equal(op.kind, 'build');
    const done = await ended(op.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.deepEqual([done.progress.current, done.progress.total], [4, 4]);
    assert.match(done.progress.phase ?? '', /^STEP 4\/4: CMD/);
    assert.ok(done.progress.log.includes('built-line'), JSON.stringify(done.progress.log));
    assert.match(String(done.result?.imageId), /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(done.result?.tags, ['ops-built:1']);
    assert.equal((await root.ok('run', '--rm', 'ops-built:1')).trim(), 'from the context');

    // a failing step: the operation fails with the step's error
    const bad = (await call(
      'POST',
      '/images/build',
      '/images/build?t=ops-bad:1',
      202,
      tarOf({ Containerfile: 'FROM busybox\nRUN exit 9\n' }),
    )) as Op;
    const failed = await ended(bad.id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error ?? '', /exit|9/);
    // a build cannot be cancelled half-way; a bad archive is a 400 before any operation
    const r = await api('POST', '/hull/v1/images/build', Buffer.from('not a tar at all'.repeat(64)));
    assert.equal(r.status, 400, r.body);
  });

  test('POST /instances/{id}/start?async=1: 202, the boot phases, the running instance as result', async () => {
    await root.ok('create', '--name', 'ops-box', 'busybox', 'sleep', '1000');
    const op = (await call('POST', '/instances/{id}/start', '/instances/ops-box/start?async=1', 202)) as Op;
    assert.equal(op.kind, 'boot');
    const done = await ended(op.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.progress.phase, 'running');
    assert.equal(done.progress.current, done.progress.total);
    assert.equal(done.result?.state, 'running');
    assert.equal((await root.inspect('ops-box')).State.Running, true);
    // DELETE of a running boot is refused; of an ended one too
    assert.equal((await api('DELETE', `/hull/v1/operations/${op.id}`)).status, 409);
    await root.ok('rm', '-f', 'ops-box');
  });

  test('a daemon restart: the operations are listed again; one that was running is failed, interrupted', async () => {
    const before = (await call('GET', '/operations', '/operations', 200)) as Op[];
    assert.equal(before.length, 3);
    const slow = (await call(
      'POST',
      '/images/build',
      '/images/build?t=ops-slow:1',
      202,
      tarOf({ Containerfile: 'FROM busybox\nRUN echo sleeping; sleep 600\n' }),
    )) as Op;
    await waitFor('the build to reach its RUN step', async () => {
      const o = (await call('GET', '/operations/{id}', `/operations/${slow.id}`, 200)) as Op;
      return o.progress.current === 2 || undefined;
    });
    // the daemon dies (kill -9): the build goes with it
    daemon!.child.kill('SIGKILL');
    await daemon!.exited;
    daemon = await startDaemon(root, socket);
    const after = (await call('GET', '/operations', '/operations', 200)) as Op[];
    assert.deepEqual(
      after.map((o) => o.id),
      [...before.map((o) => o.id), slow.id],
    );
    const s = after.find((o) => o.id === slow.id)!;
    assert.equal(s.state, 'failed');
    assert.equal(s.error, 'interrupted by a daemon restart');
    assert.equal(s.progress.current, 2, 'its progress as last recorded');
    for (const o of before) assert.equal(after.find((x) => x.id === o.id)!.state, o.state);
    const one = (await call('GET', '/operations/{id}', `/operations/${slow.id}`, 200)) as Op;
    assert.equal(one.error, 'interrupted by a daemon restart');
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    daemon = undefined;
  });

  test('leaves nothing behind', async () => {
    await stopIfRunning(daemon);
    await root.ok('rmi', 'ops-built:1');
    await root.cleanupAndCheck();
  });
});
