/**
 * Units of the registry client: WWW-Authenticate parsing, platform choice, the credentials file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseChallenges } from '../src/image/registry/auth.js';
import { RegistryClient } from '../src/image/registry/client.js';
import { CredentialStore } from '../src/image/registry/credentials.js';
import { choosePlatform, parsePlatform } from '../src/image/registry/pull.js';
import type { OciIndex } from '../src/image/types.js';

const dir = mkdtempSync('/tmp/hull-test-registry-unit-');
after(() => rmSync(dir, { recursive: true, force: true }));

test('parseChallenges: bearer with quoted, comma-holding values; basic; several challenges', () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull,push',
        },
      },
    ],
  );
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="a", Bearer realm=http://x/t,service=s'), [
    { scheme: 'basic', params: { realm: 'a' } },
    { scheme: 'bearer', params: { realm: 'http://x/t', service: 's' } },
  ]);
  assert.deepEqual(parseChallenges('Bearer realm="a\\"b"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }]);
  assert.deepEqual(parseChallenges(''), []);
});

test('parsePlatform and choosePlatform', () => {
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('linux'), /invalid platform "linux": expected os\/arch\[\/variant\]/);
  const d = (architecture: string, variant?: string) => ({
    mediaType: 'm',
    digest: `sha256:${architecture}${variant ?? ''}`,
    size: 1,
    platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
  });
  const index: OciIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: 'm', digest: 'sha256:att', size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
      d('arm', 'v6'),
      d('arm', 'v7'),
      d('arm64'),
      d('amd64'),
    ],
  };
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' }, false)?.digest, 'sha256:amd64');
  assert.equal(
    choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, true)?.digest,
    'sha256:armv7',
  );
  assert.equal(
    choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }, true)?.digest,
    'sha256:arm64',
    'arm64 without a variant is v8',
  );
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v5' }, true), undefined);
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 's390x' }, false), undefined);
});

test('CredentialStore: 0600 file in docker format, docker.io aliases, other keys kept, remove', () => {
  const path = join(dir, 'auth.json');
  writeFileSync(
    path,
    JSON.stringify({
      auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('bob:pw:with:colons').toString('base64') } },
      credHelpers: { x: 'y' },
    }),
  );
  const store = new CredentialStore(path);
  assert.deepEqual(store.get('docker.io'), { username: 'bob', password: 'pw:with:colons' });
  store.set('127.0.0.1:5000', { username: 'alice', password: 's3cret' });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(file.credHelpers, { x: 'y' });
  assert.equal(file.auths['127.0.0.1:5000'].auth, Buffer.from('alice:s3cret').toString('base64'));
  assert.equal(store.remove('docker.io'), true);
  assert.equal(store.get('docker.io'), undefined);
  assert.equal(store.remove('docker.io'), false);
  assert.deepEqual(store.get('127.0.0.1:5000'), { username: 'alice', password: 's3cret' });
  assert.throws(() => store.set('x.io', { username: 'a:b', password: 'p' }), /may not contain ":"/);
});

test('RegistryClient: HTTPS by default, plain HTTP for loopback, --tls-verify=false and HULL_INSECURE_REGISTRIES', () => {
  const saved = process.env.HULL_INSECURE_REGISTRIES;
  try {
    process.env.HULL_INSECURE_REGISTRIES = 'reg.lan:5000, other.lan';
    assert.equal(new RegistryClient('quay.io').base, 'https://quay.io');
    assert.equal(new RegistryClient('docker.io').base, 'https://registry-1.docker.io');
    assert.equal(new RegistryClient('127.0.0.1:5000').base, 'http://127.0.0.1:5000');
    assert.equal(new RegistryClient('localhost:5000').base, 'http://localhost:5000');
    assert.equal(new RegistryClient('reg.lan:5000').base, 'http://reg.lan:5000');
    assert.equal(new RegistryClient('reg.lan').base, 'https://reg.lan');
    assert.equal(new RegistryClient('reg.lan', { insecure: true }).base, 'http://reg.lan');
  } finally {
    if (saved === undefined) delete process.env.HULL_INSECURE_REGISTRIES;
    else process.env.HULL_INSECURE_REGISTRIES = saved;
  }
});

test('parseStallTimeout: seconds or a duration; 0 is off; anything else is refused', async () => {
  const { parseStallTimeout } = await import('../src/common/parse.js');
  assert.equal(parseStallTimeout('30'), 30_000);
  assert.equal(parseStallTimeout('2.5'), 2500);
  assert.equal(parseStallTimeout('500ms'), 500);
  assert.equal(parseStallTimeout('30s'), 30_000);
  assert.equal(parseStallTimeout('2m'), 120_000);
  assert.equal(parseStallTimeout('0'), 0);
  assert.throws(
    () => parseStallTimeout('soon'),
    /invalid --stall-timeout value "soon": give seconds \(30\) or a duration \(500ms, 30s, 2m\); 0 turns it off/,
  );
  assert.throws(
    () => parseStallTimeout('-1', 'HULL_REGISTRY_STALL_TIMEOUT'),
    /invalid HULL_REGISTRY_STALL_TIMEOUT value "-1"/,
  );
});

test('stall timeout: no answer, or a body that stops, is a StallError (fetch and node:http paths)', async () => {
  const { createServer } = await import('node:http');
  const { StallError, stallFetch } = await import('../src/image/registry/client.js');
  const server = createServer((req, res) => {
    if (req.url === '/silent') return; // never answers
    res.writeHead(200, { 'Content-Length': '100' });
    res.write('0123456789'); // then nothing
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    await assert.rejects(
      stallFetch(`${base}/silent`, {}, 200),
      (e: unknown) => e instanceof StallError && e.ms === 200,
    );
    const res = await stallFetch(`${base}/body`, {}, 200);
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer(), (e: unknown) => e instanceof StallError);
    const client = new RegistryClient(`127.0.0.1:${(server.address() as { port: number }).port}`, {
      stallTimeoutMs: 200,
      attempts: 1,
    });
    const blob = await client.openBlob('x/y', `sha256:${'a'.repeat(64)}`);
    await assert.rejects(
      (async () => {
        for await (const _ of blob.body) {
          /* reading */
        }
      })(),
      (e: unknown) => e instanceof StallError,
    );
    await assert.rejects(
      client.getManifest('x/y', 'silent', 'x/y:silent'),
      /registry 127\.0\.0\.1:\d+ stalled: no data for 0\.2 s on GET \/v2\/x\/y\/manifests\/silent;/,
    );
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('describeLocalFsError: the path, its file system and the space; other errors pass through', async () => {
  const { describeLocalFsError, fileSystemOf, isLocalFsError } = await import('../src/host/fserror.js');
  const { LocalFsError } = await import('../src/common/errors.js');
  const path = join(dir, 'sub', 'blob.part');
  const fs = fileSystemOf(path)!;
  assert.ok(fs.mountPoint.startsWith('/') && fs.fsType && (fs.free ?? -1) >= 0, JSON.stringify(fs));
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.ok(isLocalFsError(enospc));
  const e = describeLocalFsError(enospc, { path, action: 'writing layer sha256:abc', needed: 3 * 1024 * 1024 });
  assert.ok(e instanceof LocalFsError);
  assert.equal(e.errno, 'ENOSPC');
  assert.equal(e.code, 'HULL_LOCAL_FS');
  assert.match(
    e.message,
    new RegExp(
      `^no space left on device writing layer sha256:abc: ${path.replace(/[.]/g, '\\.')} is on file system ${fs.mountPoint.replace(/[.]/g, '\\.')} \\(${fs.fsType} on .+\\), which has [\\d.]+ \\w+ free of [\\d.]+ \\w+, this needs 3\\.0 MiB; free space there or use a hull root \\(--root\\) on a larger file system$`,
    ),
  );
  const erofs = describeLocalFsError(Object.assign(new Error('x'), { code: 'EROFS' }), {
    path,
    action: 'writing x',
  }) as Error;
  assert.match(
    erofs.message,
    /^read-only file system writing x: .* mounted read-only; remount it read-write or use another hull root \(--root\)$/,
  );
  const reset = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
  assert.equal(describeLocalFsError(reset, { path, action: 'x' }), reset);
  assert.ok(!isLocalFsError(reset));
});

test("references: docker's messages", async () => {
  const { parseReference } = await import('../src/image/reference.js');
  assert.throws(
    () => parseReference('UPPER'),
    /^InvalidArgumentError: invalid reference format: repository name \(library\/UPPER\) must be lowercase$/,
  );
  assert.throws(
    () => parseReference('quay.io/Org/app:1'),
    /^InvalidArgumentError: invalid reference format: repository name \(Org\/app\) must be lowercase$/,
  );
  assert.throws(
    () => parseReference('a//b'),
    /^InvalidArgumentError: invalid reference format: "a\/\/b": it has an empty path component$/,
  );
  assert.equal(
    parseReference('UPPER/case').name,
    'UPPER/case',
    'an uppercase first component is a registry host, as in docker',
  );
});
