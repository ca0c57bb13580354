/** The daemon's HTTP plumbing (src/api/http.ts, src/api/docker/streams.ts, create.ts): no socket, no root. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ApiError, MAX_BODY, Router, filters, flag, parseJsonBody, readBody, statusOf } from '../../src/api/http.js';
import { frame } from '../../src/api/docker/streams.js';
import { createRequestOf } from '../../src/api/docker/create.js';
import { ConflictError, InvalidArgumentError, NoSuchInstanceError, StateError } from '../../src/common/errors.js';

const handler = async () => undefined;

test('routes: versioned and unversioned paths, parameters, image names with slashes, 404 and 405', () => {
  const r = new Router()
    .on('GET', '/containers/{id}/json', handler)
    .on('GET', '/images/json', handler)
    .on('GET', '/images/{name*}/json', handler)
    .on('DELETE', '/images/{name*}', handler)
    .hijack('POST', '/containers/{id}/attach', handler);
  const ok = (method: string, path: string, hijacked = false) => {
    const m = r.match(method, path, hijacked);
    assert.ok(!(m instanceof ApiError), `${method} ${path}: ${m instanceof ApiError ? m.message : ''}`);
    return m.params;
  };
  assert.deepEqual(ok('GET', '/v1.41/containers/abc/json'), { id: 'abc' });
  assert.deepEqual(ok('GET', '/containers/abc/json'), { id: 'abc' });
  assert.deepEqual(ok('HEAD', '/containers/abc/json'), { id: 'abc' });
  assert.deepEqual(ok('GET', '/images/json'), {});
  assert.deepEqual(ok('GET', '/v1.41/images/127.0.0.1:5000/team/app:1/json'), { name: '127.0.0.1:5000/team/app:1' });
  assert.deepEqual(ok('DELETE', '/images/127.0.0.1%3A5000/app'), { name: '127.0.0.1:5000/app' });
  assert.deepEqual(ok('POST', '/containers/x/attach', true), { id: 'x' });
  const notHijacked = r.match('POST', '/containers/x/attach', false);
  assert.ok(notHijacked instanceof ApiError && notHijacked.status === 405);
  const missing = r.match('GET', '/v1.41/nothing/here', false);
  assert.ok(missing instanceof ApiError && missing.status === 404);
  const wrongMethod = r.match('POST', '/containers/abc/json', false);
  assert.ok(wrongMethod instanceof ApiError && wrongMethod.status === 405);
});

test("docker's status codes for hull's errors", () => {
  assert.equal(statusOf(new NoSuchInstanceError('x')), 404);
  assert.equal(statusOf(new ConflictError('taken')), 409);
  assert.equal(statusOf(new StateError('not running')), 409);
  assert.equal(statusOf(new InvalidArgumentError('bad')), 400);
  assert.equal(statusOf(new Error('boom')), 500);
  assert.equal(statusOf(new ApiError(401, 'no')), 401);
});

test('JSON bodies: empty is {}, malformed and non-objects are 400, oversized 413', async () => {
  assert.deepEqual(parseJsonBody(Buffer.from('')), {});
  assert.deepEqual(parseJsonBody(Buffer.from('{"a":1}')), { a: 1 });
  for (const bad of ['{"a":', '[1]', '"text"', '5']) {
    assert.throws(
      () => parseJsonBody(Buffer.from(bad)),
      (e: unknown) => e instanceof ApiError && e.status === 400,
    );
  }
  await assert.rejects(
    readBody(new PassThrough(), MAX_BODY + 1),
    (e: unknown) => e instanceof ApiError && e.status === 413,
  );
  const big = new PassThrough();
  const p = readBody(big, undefined);
  big.write(Buffer.alloc(MAX_BODY + 10));
  await assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === 413);
});

test('a hijacked body stops at its length: what follows stays in the stream', async () => {
  const s = new PassThrough();
  const p = readBody(s, 5, Buffer.from('{"a"'));
  s.write(Buffer.from(':1}stdin-bytes'));
  // 5 bytes: '{"a"' and ':'
  assert.equal((await p).toString(), '{"a":');
  assert.equal(String(s.read()), '1}stdin-bytes');
});

test('query flags and filters as docker sends them', () => {
  const q = new URLSearchParams('all=1&stream=false&x=True&filters={"label":["a=b","c"],"status":{"running":true}}');
  assert.equal(flag(q, 'all'), true);
  assert.equal(flag(q, 'stream'), false);
  assert.equal(flag(q, 'x'), true);
  assert.equal(flag(q, 'missing'), false);
  assert.deepEqual(filters(q), { label: ['a=b', 'c'], status: ['running'] });
  assert.throws(
    () => filters(new URLSearchParams('filters=nope')),
    (e: unknown) => e instanceof ApiError && e.status === 400,
  );
});

test('multiplexed frames: [stream, 0, 0, 0, size BE u32] then the payload', () => {
  assert.deepEqual([...frame(2, Buffer.from('hi'))], [2, 0, 0, 0, 0, 0, 0, 2, 104, 105]);
});

test('create bodies: HostConfig onto a create request; wrong types name the field', () => {
  const req = createRequestOf(
    {
      Image: 'busybox',
      Cmd: ['sh'],
      Env: ['A=1', 'NOVALUE'],
      Tty: true,
      OpenStdin: true,
      Labels: { k: 'v' },
      Entrypoint: [''],
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 2e9, Retries: 2 },
      HostConfig: {
        Binds: ['/tmp:/mnt:ro'],
        Tmpfs: { '/run': 'size=1m' },
        Memory: 64 * 1024 * 1024,
        NanoCpus: 5e8,
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': null },
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        AutoRemove: true,
        Isolation: 'vm',
        NetworkMode: 'backend',
        Init: true,
        Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
      },
      NetworkingConfig: { EndpointsConfig: { backend: { Aliases: ['api'], IPAMConfig: { IPv4Address: '10.0.0.5' } } } },
    },
    'named',
  );
  assert.equal(req.kind, 'vm');
  assert.equal(req.name, 'named');
  assert.deepEqual(req.env, ['A=1']);
  assert.deepEqual(req.entrypoint, []);
  assert.deepEqual(req.mounts, [
    { type: 'bind', source: '/tmp', target: '/mnt', readonly: true, createHostPath: true },
    { type: 'tmpfs', target: '/run', options: ['size=1m'] },
  ]);
  assert.deepEqual(req.resources, { memory: 64 * 1024 * 1024, cpus: 0.5 });
  assert.deepEqual(req.publish, ['8080:80/tcp', '53/udp']);
  assert.deepEqual(req.restart, { name: 'on-failure', maxRetries: 3 });
  assert.deepEqual(req.networks, ['backend']);
  assert.deepEqual(req.aliases, ['api']);
  assert.equal(req.ip, '10.0.0.5');
  assert.equal(req.autoRemove, true);
  assert.equal(req.init, true);
  assert.deepEqual(req.health, { test: ['CMD-SHELL', 'true'], intervalMs: 2000, retries: 2 });
  assert.deepEqual(req.ulimits, [{ type: 'nofile', soft: 100, hard: 200 }]);
  assert.equal(
    createRequestOf({ Image: 'busybox', HostConfig: { NetworkMode: 'default' } }, undefined).networks,
    undefined,
  );
  for (const [body, field] of [
    [{ Image: 'busybox', Cmd: 5 }, /Cmd/],
    [{ Image: 'busybox', HostConfig: { Memory: '1g' } }, /HostConfig\.Memory/],
    [{ Image: 'busybox', HostConfig: { Isolation: 'hyperv' } }, /isolation/],
    [{}, /Image/],
  ] as const) {
    assert.throws(
      () => createRequestOf(body as Record<string, unknown>, undefined),
      (e: unknown) => e instanceof ApiError && e.status === 400 && field.test(e.message),
    );
  }
});
