/**
 * End to end: hull pull / push / login / logout against a real registry (Debian's
 * docker-registry on 127.0.0.1, with skopeo as the independent client) and against a fault
 * registry (node:http) that sends wrong blobs, asks for tokens, rate-limits, drops connections.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { HullRoot } from './helpers/hull.js';
import {
  FaultRegistry,
  OciLayoutBuilder,
  freePort,
  makeLayer,
  skopeo,
  startDockerRegistry,
  type RunningRegistry,
} from './helpers/registry.js';

const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
const OTHER_ARCH = HOST_ARCH === 'arm64' ? 'amd64' : 'arm64';

const work = mkdtempSync('/tmp/hull-test-registry-work-');
const roots: HullRoot[] = [];
const newRoot = (name: string) => {
  const r = new HullRoot(name);
  roots.push(r);
  return r;
};
let registry: RunningRegistry;
const fault = new FaultRegistry();
const basicFault = new FaultRegistry(true);

before(async () => {
  registry = await startDockerRegistry();
  await fault.start();
  await basicFault.start();
});
after(async () => {
  for (const r of roots) await r.dispose();
  await registry?.stop();
  await fault.stop();
  await basicFault.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Blob files and temp entries of a root's image store. */
function storeFiles(root: HullRoot): { blobs: string[]; tmp: string[] } {
  const dir = join(root.dir, 'images');
  const list = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  return { blobs: list(join(dir, 'blobs', 'sha256')).map((h) => `sha256:${h}`), tmp: list(join(dir, '.tmp')) };
}

describe('push and pull with a real registry', () => {
  const src = newRoot('registry-src');

  test('hull push busybox: skopeo sees it; pushing again skips every blob', async () => {
    const r = await src.hull('push', 'busybox', `${registry.host}/test/busybox:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Pushed .*test\/busybox:1: sha256:[0-9a-f]{64}/);
    const info = JSON.parse(skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/test/busybox:1`)) as {
      Digest: string;
      Layers: string[];
      Architecture: string;
    };
    const local = JSON.parse(await src.ok('image', 'inspect', 'busybox')) as {
      Hull: { ManifestDigest: string; Layers: { digest: string }[] };
    }[];
    assert.equal(info.Digest, local[0]!.Hull.ManifestDigest, "the registry has hull's manifest byte for byte");
    assert.deepEqual(
      info.Layers,
      local[0]!.Hull.Layers.map((l) => l.digest),
    );
    const again = await src.hull('push', 'busybox', `${registry.host}/test/busybox:1`);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((again.stderr.match(/already in the registry/g) ?? []).length, 2, again.stderr);
  });

  test('pushing to another repository of the same registry mounts the blobs', async () => {
    await src.ok('tag', 'busybox', `${registry.host}/test/busybox:1`);
    const r = await src.hull('push', `${registry.host}/test/busybox:1`, `${registry.host}/other/bb:2`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stderr.match(/mounted from another repository/g) ?? []).length, 2, r.stderr);
    skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/other/bb:2`);
  });

  test('a chunked upload (HULL_PUSH_CHUNK_SIZE) gives the same image', async () => {
    const r = await src.hullWith(
      { env: { HULL_PUSH_CHUNK_SIZE: String(300 * 1024) } },
      'push',
      'busybox',
      `${registry.host}/chunked/bb:1`,
    );
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/chunked/bb:1`)) as {
      Digest: string;
    };
    const b = JSON.parse(skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/test/busybox:1`)) as {
      Digest: string;
    };
    assert.equal(a.Digest, b.Digest);
  });

  test('skopeo copies what hull pushed into an oci: dir and back; hull pulls the copy and runs it', async () => {
    const dir = join(work, 'roundtrip');
    skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/test/busybox:1`, `oci:${dir}:bb`);
    skopeo('copy', '--dest-tls-verify=false', `oci:${dir}:bb`, `docker://${registry.host}/roundtrip/bb:1`);
    const dst = newRoot('registry-roundtrip');
    const id = (await dst.ok('pull', '-q', `${registry.host}/roundtrip/bb:1`)).trim();
    const srcId = JSON.parse(await src.ok('image', 'inspect', 'busybox'))[0].Id as string;
    assert.equal(id, srcId);
    assert.equal(
      (await dst.ok('run', '--rm', `${registry.host}/roundtrip/bb:1`, 'echo', 'round trip')).trim(),
      'round trip',
    );
  });

  test('a multi-layer image pushed by skopeo: hull pull, images, run; a second pull skips stored layers', async () => {
    const layout = new OciLayoutBuilder(join(work, 'multi'));
    const busyboxLayer = JSON.parse(await src.ok('image', 'inspect', 'busybox'))[0].Hull.Layers[0] as {
      digest: string;
    };
    const base = readFileSync(join(src.dir, 'images', 'blobs', 'sha256', busyboxLayer.digest.slice(7)));
    const l1 = layout.blob('application/vnd.oci.image.layer.v1.tar', base);
    const two = makeLayer({ 'hello.txt': 'layer two\n', 'etc/motd': 'second layer\n' });
    const l2 = layout.blob('application/vnd.oci.image.layer.v1.tar+gzip', two.gz);
    const three = makeLayer({ 'hello.txt': 'layer three\n' });
    const l3 = layout.blob('application/vnd.oci.image.layer.v1.tar+gzip', three.gz);
    layout.name(layout.image([l1, l2, l3], [l1.digest, two.diffId, three.diffId], HOST_ARCH), 'multi');
    skopeo(
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'multi')}:multi`,
      `docker://${registry.host}/multi/img:1`,
    );

    const dst = newRoot('registry-multi');
    const pulled = await dst.hull('pull', `${registry.host}/multi/img:1`);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal((pulled.stderr.match(/downloaded/g) ?? []).length, 3, pulled.stderr);
    assert.match(await dst.ok('images'), new RegExp(`${registry.host}/multi/img\\s+1\\s`));
    assert.equal(
      await dst.ok('run', '--rm', `${registry.host}/multi/img:1`, 'cat', '/hello.txt', '/etc/motd'),
      'layer three\nsecond layer\n',
    );
    // the same layers under another name: nothing to download
    skopeo(
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${registry.host}/multi/img:1`,
      `docker://${registry.host}/multi/copy:1`,
    );
    const again = await dst.hull('pull', `${registry.host}/multi/copy:1`);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((again.stderr.match(/already exists/g) ?? []).length, 3, again.stderr);
  });

  test("an index with two platforms: the host's is chosen; --platform picks the other", async () => {
    const layout = new OciLayoutBuilder(join(work, 'index'));
    const a = makeLayer({ 'arch.txt': `${HOST_ARCH}\n` });
    const b = makeLayer({ 'arch.txt': `${OTHER_ARCH}\n` });
    const la = layout.blob('application/vnd.oci.image.layer.v1.tar+gzip', a.gz);
    const lb = layout.blob('application/vnd.oci.image.layer.v1.tar+gzip', b.gz);
    const other = layout.image([lb], [b.diffId], OTHER_ARCH);
    const host = layout.image([la], [a.diffId], HOST_ARCH);
    layout.name(layout.index([other, host]), 'multiarch');
    skopeo(
      'copy',
      '--all',
      '--dest-tls-verify=false',
      `oci:${join(work, 'index')}:multiarch`,
      `docker://${registry.host}/multiarch/img:1`,
    );

    const dst = newRoot('registry-index');
    await dst.ok('pull', '-q', `${registry.host}/multiarch/img:1`);
    let img = JSON.parse(await dst.ok('image', 'inspect', `${registry.host}/multiarch/img:1`))[0] as {
      Hull: { ManifestDigest: string };
      Architecture: string;
    };
    assert.equal(img.Architecture, HOST_ARCH);
    assert.equal(img.Hull.ManifestDigest, host.digest);
    await dst.ok('pull', '-q', '--platform', `linux/${OTHER_ARCH}`, `${registry.host}/multiarch/img:1`);
    img = JSON.parse(await dst.ok('image', 'inspect', `${registry.host}/multiarch/img:1`))[0];
    assert.equal(img.Architecture, OTHER_ARCH);
    const none = await dst.hull('pull', '--platform', 'linux/s390x', `${registry.host}/multiarch/img:1`);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^hull: image .* has no variant for platform linux\/s390x \(it has: linux\/\w+, linux\/\w+\); choose one with --platform\n$/,
    );
  });

  test("a nested index (an index entry without a platform that is an index itself): hull goes down to the host's image", async () => {
    const layout = new OciLayoutBuilder(join(work, 'nested'));
    const a = makeLayer({ 'nested.txt': 'inner\n' });
    const la = layout.blob('application/vnd.oci.image.layer.v1.tar+gzip', a.gz);
    const host = layout.image([la], [a.diffId], HOST_ARCH);
    layout.name(host, 'host');
    // skopeo 1.9 cannot copy nested indexes: it pushes the image, the indexes go up through the API by hand
    skopeo(
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'nested')}:host`,
      `docker://${registry.host}/nested/img:host`,
    );
    const innerBody = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [host],
    });
    const inner = layout.blob('application/vnd.oci.image.index.v1+json', innerBody);
    const outerBody = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: inner.mediaType, digest: inner.digest, size: inner.size }],
    });
    for (const [ref, body] of [
      [inner.digest, innerBody],
      ['1', outerBody],
    ] as const) {
      const res = await fetch(`http://${registry.host}/v2/nested/img/manifests/${ref}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
        body,
      });
      assert.equal(res.status, 201, await res.text());
    }
    const dst = newRoot('registry-nested');
    await dst.ok('pull', '-q', `${registry.host}/nested/img:1`);
    const img = JSON.parse(await dst.ok('image', 'inspect', `${registry.host}/nested/img:1`))[0] as {
      Hull: { ManifestDigest: string };
    };
    assert.equal(img.Hull.ManifestDigest, host.digest);
  });

  test('an unknown tag is one clear line, exit 1', async () => {
    const dst = newRoot('registry-unknown');
    const r = await dst.hull('pull', `${registry.host}/test/busybox:nope`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^hull: image not found in registry: 127\.0\.0\.1:\d+\/test\/busybox:nope \(MANIFEST_UNKNOWN[^\n]*\)\n$/,
    );
    assert.deepEqual(storeFiles(dst).blobs, []);
  });
});

describe('save and load', () => {
  const src = newRoot('archive-src');

  test("save --format oci-archive: skopeo reads it, with hull's manifest digest", async () => {
    const file = join(work, 'bb-oci.tar');
    await src.ok('save', '-o', file, 'busybox');
    const info = JSON.parse(skopeo('inspect', `oci-archive:${file}`)) as { Digest: string };
    const local = JSON.parse(await src.ok('image', 'inspect', 'busybox'))[0] as { Hull: { ManifestDigest: string } };
    assert.equal(info.Digest, local.Hull.ManifestDigest);
  });

  test('save --format docker-archive: skopeo copies it to an oci: dir and back to a docker-archive that hull loads and runs', async () => {
    const file = join(work, 'bb-docker.tar');
    await src.ok('save', '--format', 'docker-archive', '-o', file, 'busybox');
    const info = JSON.parse(skopeo('inspect', `docker-archive:${file}`)) as { Layers: string[] };
    assert.equal(info.Layers.length, 1);
    skopeo('copy', `docker-archive:${file}`, `oci:${join(work, 'from-docker')}:x`);
    const back = join(work, 'skopeo-docker.tar');
    skopeo('copy', `oci:${join(work, 'from-docker')}:x`, `docker-archive:${back}:foo/bar:2`);
    const dst = newRoot('archive-docker');
    assert.equal(await dst.ok('load', '-i', back), 'Loaded image: foo/bar:2\n');
    assert.equal(await dst.ok('run', '--rm', 'foo/bar:2', 'echo', 'loaded'), 'loaded\n');
  });

  test('an oci-archive written by skopeo (three layers, gzip) loads and runs', async () => {
    const file = join(work, 'multi-oci.tar');
    skopeo(
      'copy',
      '--src-tls-verify=false',
      `docker://${registry.host}/multi/img:1`,
      `oci-archive:${file}:quay.io/x/multi:1`,
    );
    const dst = newRoot('archive-oci');
    assert.equal(await dst.ok('load', '-i', file), 'Loaded image: quay.io/x/multi:1\n');
    assert.equal(await dst.ok('run', '--rm', 'quay.io/x/multi:1', 'cat', '/hello.txt'), 'layer three\n');
  });

  test('an archive with a corrupted blob: load fails, nothing is stored', async () => {
    const file = join(work, 'bb-oci.tar');
    const dir = join(work, 'corrupt');
    spawnSync('mkdir', ['-p', dir]);
    assert.equal(spawnSync('tar', ['-xf', file, '-C', dir]).status, 0);
    const layer = (
      JSON.parse(await src.ok('image', 'inspect', 'busybox'))[0] as { Hull: { Layers: { digest: string }[] } }
    ).Hull.Layers[0]!.digest;
    const path = join(dir, 'blobs', 'sha256', layer.slice(7));
    const bytes = readFileSync(path);
    bytes[100] ^= 0xff;
    writeFileSync(path, bytes);
    const bad = join(work, 'corrupt.tar');
    assert.equal(spawnSync('tar', ['-cf', bad, '-C', dir, '.']).status, 0);
    const dst = newRoot('archive-corrupt');
    const r = await dst.hull('load', '-i', bad);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^hull: cannot load \/\S+\/corrupt\.tar: blob digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}; the archive is damaged\n$/,
    );
    assert.deepEqual(storeFiles(dst), { blobs: [], tmp: [] });
  });
});

describe('faults', () => {
  test('a blob with the wrong digest: pull fails, no blob and no image in the store', async () => {
    const dst = newRoot('registry-badblob');
    const r = await dst.hull('pull', `${fault.host}/bad-blob/img:1`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /hull: registry 127\.0\.0\.1:\d+ sent layer sha256:[0-9a-f]+ of .*bad-blob\/img:1 with the wrong content \(blob digest mismatch: expected sha256:[0-9a-f]+, got sha256:[0-9a-f]+\); it was not stored\n$/,
    );
    const files = storeFiles(dst);
    assert.ok(!files.blobs.includes(fault.image.layerDigest), 'no layer blob');
    assert.deepEqual(files.tmp, [], 'no temp files');
    assert.deepEqual(
      existsSync(join(dst.dir, 'images', '.downloads')) ? readdirSync(join(dst.dir, 'images', '.downloads')) : [],
      [],
      'no partial',
    );
    assert.doesNotMatch(await dst.ok('images'), /bad-blob/);
    // the verified config stays as an unreferenced blob (a later pull reuses it) until a prune
    await dst.ok('image', 'prune');
    assert.deepEqual(storeFiles(dst).blobs, []);
  });

  test('a docker schema 2 image behind a bearer-token challenge: pulled with the token', async () => {
    const dst = newRoot('registry-bearer');
    const r = await dst.hull('pull', `${fault.host}/bearer/img:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      fault.log.some((l) => l.startsWith('GET /token?service=fault&scope=repository%3Abearer%2Fimg%3Apull')),
      fault.log.join('\n'),
    );
    const img = JSON.parse(await dst.ok('image', 'inspect', `${fault.host}/bearer/img:1`))[0] as {
      Hull: { ManifestDigest: string };
    };
    assert.equal(
      img.Hull.ManifestDigest,
      'sha256:' + (await import('node:crypto')).createHash('sha256').update(fault.image.manifest).digest('hex'),
      'the docker manifest is kept as it was',
    );
  });

  test('429 twice, then success: retried', async () => {
    const dst = newRoot('registry-busy');
    const r = await dst.hull('pull', '-q', `${fault.host}/busy/img:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fault.log.filter((l) => l.startsWith('GET /v2/busy/img/manifests/')).length, 3);
  });

  test('a connection dropped in the middle of a layer: the layer is fetched again', async () => {
    const dst = newRoot('registry-flaky');
    const r = await dst.hull('pull', `${fault.host}/flaky-blob/img:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /retrying/);
    assert.deepEqual(storeFiles(dst).tmp, []);
  });

  test('always rate-limited: one line after the retries, exit 1', async () => {
    const dst = newRoot('registry-limited');
    const r = await dst.hullWith({ env: { HULL_REGISTRY_ATTEMPTS: '2' } }, 'pull', `${fault.host}/limited/img:1`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^hull: registry 127\.0\.0\.1:\d+ is rate-limiting hull \(429 Too Many Requests\) for GET \/v2\/limited\/img\/manifests\/1, 2 attempts; try again later\n$/,
    );
  });

  test('404 for the manifest: image not found in registry', async () => {
    const dst = newRoot('registry-missing');
    const r = await dst.hull('pull', `${fault.host}/missing/img:1`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^hull: image not found in registry: 127\.0\.0\.1:\d+\/missing\/img:1 \(MANIFEST_UNKNOWN: manifest unknown\)\n$/,
    );
  });

  test('connection refused: one line naming the registry', async () => {
    const dst = newRoot('registry-refused');
    const port = await freePort();
    const r = await dst.hullWith({ env: { HULL_REGISTRY_ATTEMPTS: '2' } }, 'pull', `127.0.0.1:${port}/x/y:1`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^hull: registry 127\\.0\\.0\\.1:${port} is not reachable at http://127\\.0\\.0\\.1:${port}: connection refused \\(ECONNREFUSED\\) \\(after 2 attempts\\); check that it runs and the address is right\\n$`,
      ),
    );
  });
});

describe('login and logout (basic auth)', () => {
  test('without credentials: auth refused; wrong password: refused, nothing saved', async () => {
    const dst = newRoot('registry-login-none');
    const r = await dst.hull('pull', `${basicFault.host}/none/img:1`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^hull: registry ${basicFault.host} requires authentication; log in with: hull login ${basicFault.host}\\n$`,
      ),
    );
    const bad = await dst.hullWith({ input: 'wrong\n' }, 'login', '-u', 'alice', '--password-stdin', basicFault.host);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^hull: registry 127\.0\.0\.1:\d+ refused the credentials of alice \(UNAUTHORIZED: unauthorized\); log in with: hull login 127\.0\.0\.1:\d+\n$/,
    );
    assert.ok(!existsSync(join(dst.dir, 'auth.json')));
  });

  test('login saves auth.json (0600, docker format), pull uses it, logout forgets it', async () => {
    const dst = newRoot('registry-login');
    const r = await dst.hullWith({ input: 'secret\n' }, 'login', '-u', 'alice', '--password-stdin', basicFault.host);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Login Succeeded!\n');
    const path = join(dst.dir, 'auth.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), {
      auths: { [basicFault.host]: { auth: Buffer.from('alice:secret').toString('base64') } },
    });
    await dst.ok('pull', '-q', `${basicFault.host}/none/img:1`);
    assert.match(await dst.ok('images'), new RegExp(`${basicFault.host}/none/img\\s+1\\s`));
    assert.equal(await dst.ok('logout', basicFault.host), `Removed login credentials for ${basicFault.host}\n`);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { auths: {} });
    const again = await dst.hull('logout', basicFault.host);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `hull: not logged in to ${basicFault.host}\n`);
    const p = await dst.hull('pull', `${basicFault.host}/none/img:1`);
    assert.equal(p.code, 1);
  });

  test('roots leave nothing behind', async () => {
    for (const r of roots) await r.cleanupAndCheck();
  });
});
