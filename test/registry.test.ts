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
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
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
  const d = (architecture: string, variant?: string) => ({ mediaType: 'm', digest: `sha256:${architecture}${variant ?? ''}`, size: 1, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const index: OciIndex = { schemaVersion: 2, manifests: [
    { mediaType: 'm', digest: 'sha256:att', size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
    d('arm', 'v6'), d('arm', 'v7'), d('arm64'), d('amd64'),
  ] };
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' }, false)?.digest, 'sha256:amd64');
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, true)?.digest, 'sha256:armv7');
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }, true)?.digest, 'sha256:arm64', 'arm64 without a variant is v8');
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v5' }, true), undefined);
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 's390x' }, false), undefined);
});

test('CredentialStore: 0600 file in docker format, docker.io aliases, other keys kept, remove', () => {
  const path = join(dir, 'auth.json');
  writeFileSync(path, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('bob:pw:with:colons').toString('base64') } }, credHelpers: { x: 'y' } }));
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
