/**
 * End to end: `hull run` pulls a missing image (--pull missing|always|never), and image garbage
 * collection (`hull image prune [-a]`, `hull rmi -f` of an image in use) against a real registry,
 * including a prune that runs while a build is in progress in another hull process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore } from '../src/image/store.js';
import { HullRoot, jsonLines, waitFor } from './helpers/hull.js';
import { spawnSync } from 'node:child_process';
import { OciLayoutBuilder, makeLayer, skopeo, startDockerRegistry, type RunningRegistry } from './helpers/registry.js';

const roots: HullRoot[] = [];
const newRoot = (name: string) => {
  const r = new HullRoot(name);
  roots.push(r);
  return r;
};
const work = mkdtempSync('/tmp/hull-test-gc-work-');
let registry: RunningRegistry;

before(async () => {
  registry = await startDockerRegistry();
  const src = newRoot('gc-src');
  await src.ok('push', 'busybox', `${registry.host}/gc/busybox:1`);
});
after(async () => {
  for (const r of roots) await r.dispose();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

const list = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => /^[a-f0-9]{64}$/.test(n)) : []);
const blobs = (root: HullRoot) => list(join(root.dir, 'images', 'blobs', 'sha256'));
const layers = (root: HullRoot) => list(join(root.dir, 'layers'));

describe('hull run pulls missing images', () => {
  test('--pull missing (the default) pulls once, then uses the stored image', async () => {
    const root = newRoot('gc-autopull');
    const ref = `${registry.host}/gc/busybox:1`;
    const first = await root.hull('run', '--rm', ref, 'echo', 'pulled-and-ran');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'pulled-and-ran\n');
    assert.match(first.stderr, /Unable to find image .* locally/);
    const second = await root.hull('run', '--rm', ref, 'echo', 'again');
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /Unable to find image/);
    await root.cleanupAndCheck();
  });

  test('--pull never fails on a missing image; --pull always pulls even when stored; create pulls too', async () => {
    const root = newRoot('gc-pullpolicy');
    const ref = `${registry.host}/gc/busybox:1`;
    const never = await root.hull('run', '--rm', '--pull', 'never', ref, 'true');
    assert.equal(never.code, 125);
    assert.match(never.stderr, /image not found/);
    assert.equal(never.stderr.trim().split('\n').length, 1, never.stderr);
    const id = (await root.ok('create', '-q', ref, 'true')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const always = await root.hull('run', '--rm', '--pull', 'always', ref, 'true');
    assert.equal(always.code, 0, always.stderr);
    assert.match(always.stderr, /already (there|stored)|Copying|pull|sha256/i);
    const bad = await root.hull('run', '--rm', '--pull', 'sometimes', ref, 'true');
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid --pull value "sometimes"/);
    const down = await root.hull('run', '--rm', '127.0.0.1:1/nothing/here:1', 'true');
    assert.equal(down.code, 125);
    assert.match(down.stderr, /not reachable/);
    await root.cleanupAndCheck();
  });
});

describe('--pull newer', () => {
  test('pulls when the registry has a different image under the name, not when it has the same; an unreachable registry leaves the local image in use, with a warning', async () => {
    const src = newRoot('gc-newer-src');
    const root = newRoot('gc-newer');
    const ref = `${registry.host}/gc/newer:1`;
    await src.ok('push', 'busybox', ref);
    const first = await root.hull('run', '--rm', '--pull', 'newer', ref, 'echo', 'one');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'one\n');
    assert.match(first.stderr, /Unable to find image .* locally/);
    const same = await root.hull('run', '--rm', '--pull', 'newer', ref, 'echo', 'two');
    assert.equal(same.code, 0, same.stderr);
    assert.doesNotMatch(same.stderr, /Pulling|Unable to find/, 'the registry has the same image: nothing is pulled');
    // a different image under the same name
    const ctxDir = mkdtempSync(join(work, 'newer-'));
    writeFileSync(join(ctxDir, 'Containerfile'), 'FROM busybox\nLABEL org.hull.test.newer=2\n');
    await src.ok('build', '-q', '-t', 'newer:2', ctxDir);
    await src.ok('push', 'newer:2', ref);
    const newId = (JSON.parse(await src.ok('image', 'inspect', 'newer:2')) as { Id: string }[])[0]!.Id;
    const oldId = (JSON.parse(await root.ok('image', 'inspect', ref)) as { Id: string }[])[0]!.Id;
    assert.notEqual(newId, oldId);
    const newer = await root.hull('run', '--rm', '--pull', 'newer', ref, 'echo', 'three');
    assert.equal(newer.code, 0, newer.stderr);
    assert.match(newer.stderr, /Pulling/);
    assert.equal((JSON.parse(await root.ok('image', 'inspect', ref)) as { Id: string }[])[0]!.Id, newId);
    // a name whose registry cannot be reached: the local image, and a warning
    await root.ok('tag', 'busybox', '127.0.0.1:1/gc/offline:1');
    const offline = await root.hullWith(
      { env: { HULL_REGISTRY_ATTEMPTS: '1' } },
      'run',
      '--rm',
      '--pull',
      'newer',
      '127.0.0.1:1/gc/offline:1',
      'echo',
      'four',
    );
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(offline.stdout, 'four\n');
    assert.match(
      offline.stderr,
      /^hull: warning: cannot check 127\.0\.0\.1:1\/gc\/offline:1 on its registry \(.*not reachable.*\); using the local image$/m,
    );
    await root.cleanupAndCheck();
    await src.cleanupAndCheck();
  });
});

describe('zstd layers', () => {
  test('an image with a zstd-compressed layer (pushed by skopeo) pulls and runs; hull import takes a .tar.zst', async () => {
    const root = newRoot('gc-zstd');
    const layer = makeLayer({ 'hello.txt': 'from a zstd layer\n' });
    const zst = spawnSync('zstd', ['-q', '-c'], { input: layer.tar });
    assert.equal(zst.status, 0, String(zst.stderr));
    const layout = new OciLayoutBuilder(join(work, 'zstd'));
    const base = JSON.parse(await root.ok('image', 'inspect', 'busybox')) as {
      Hull: { Layers: { digest: string; diffId: string; size: number; mediaType: string }[] };
    }[];
    // busybox's own layer (copied from the store) under a zstd layer
    const bbLayer = base[0]!.Hull.Layers[0]!;
    const bb = layout.blob(
      bbLayer.mediaType,
      readFileSync(join(root.dir, 'images', 'blobs', 'sha256', bbLayer.digest.slice(7))),
    );
    const z = layout.blob('application/vnd.oci.image.layer.v1.tar+zstd', zst.stdout);
    layout.name(
      layout.image([bb, z], [bbLayer.diffId, layer.diffId], process.arch === 'arm64' ? 'arm64' : 'amd64', [
        'cat',
        '/hello.txt',
      ]),
      'z1',
    );
    skopeo('copy', '--dest-tls-verify=false', `oci:${join(work, 'zstd')}:z1`, `docker://${registry.host}/gc/zstd:1`);
    const r = await root.hull('run', '--rm', '-q', `${registry.host}/gc/zstd:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from a zstd layer\n');
    const file = join(work, 'rootfs.tar.zst');
    writeFileSync(file, zst.stdout);
    await root.ok('import', file, 'imported:zst');
    const layers = JSON.parse(await root.ok('image', 'inspect', 'imported:zst')) as {
      Hull: { Layers: { mediaType: string }[] };
    }[];
    assert.equal(layers[0]!.Hull.Layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    writeFileSync(file, Buffer.concat([zst.stdout.subarray(0, 40), Buffer.alloc(64, 7)]));
    const bad = await root.hull('import', file, 'broken:zst');
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /cannot import .*rootfs.tar.zst: (not a tar archive \(plain, gzip or zstd\)|bad zstd data)/,
    );
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    await root.cleanupAndCheck();
  });
});

describe('image prune', () => {
  test('prune removes dangling images only; -a every unused one; blobs and extracted layers go with them', async () => {
    const root = newRoot('gc-prune');
    const ref = `${registry.host}/gc/busybox:1`;
    await root.ok('pull', '-q', ref);
    // a dangling image: build one, then build another under the same name
    const ctxDir = join(work, 'ctx');
    writeFileSync(join(work, 'Containerfile.a'), 'FROM busybox\nRUN echo a > /a\n');
    writeFileSync(join(work, 'Containerfile.b'), 'FROM busybox\nRUN echo b > /b\n');
    rmSync(ctxDir, { recursive: true, force: true });
    await root.ok('build', '-q', '-t', 'app:1', '-f', join(work, 'Containerfile.a'), work);
    await root.ok('build', '-q', '-t', 'app:1', '-f', join(work, 'Containerfile.b'), work);
    const before = jsonLines<{ Repository: string }>(await root.ok('images', '--format', 'json'));
    assert.equal(before.filter((i) => i.Repository === '<none>').length, 1, 'one dangling image');
    const blobsBefore = blobs(root).length;
    const r = JSON.parse(await root.ok('image', 'prune', '-f', '--format', 'json')) as {
      ImagesDeleted: string[];
      BlobsDeleted: string[];
      SpaceReclaimed: number;
      CacheEntriesDeleted: number;
    };
    assert.equal(r.ImagesDeleted.length, 1);
    assert.equal(r.CacheEntriesDeleted, 1, 'the cache entry of the pruned RUN layer');
    // the surviving image's steps still hit the cache; builder prune empties it
    assert.match(await root.ok('build', '-t', 'app:1', '-f', join(work, 'Containerfile.b'), work), /Using cache/);
    assert.match(await root.ok('builder', 'prune', '-f'), /Deleted build cache entries: [1-9]/);
    assert.doesNotMatch(
      await root.ok('build', '-t', 'app:1', '-f', join(work, 'Containerfile.b'), work),
      /Using cache/,
    );
    await root.ok('image', 'prune', '-f');
    assert.ok(r.BlobsDeleted.length >= 3, 'its config, manifest and RUN layer');
    assert.ok(r.SpaceReclaimed > 0);
    assert.equal(blobs(root).length, blobsBefore - r.BlobsDeleted.length);
    // app:1 and the pulled image remain and run
    assert.equal((await root.hull('run', '--rm', 'app:1', 'cat', '/b')).stdout, 'b\n');

    // -a keeps what an instance uses (even a stopped one), removes the rest, with their extracted layers
    await root.ok('create', '--name', 'keeper', 'app:1', 'cat', '/b');
    const all = JSON.parse(await root.ok('image', 'prune', '-a', '-f', '--format', 'json')) as {
      ImagesDeleted: string[];
      LayersDeleted: string[];
    };
    const left = jsonLines<{ Repository: string; Tag: string }>(await root.ok('images', '--format', 'json'));
    assert.deepEqual(
      left.map((i) => `${i.Repository}:${i.Tag}`),
      ['app:1'],
    );
    assert.equal(all.ImagesDeleted.length, 1, JSON.stringify(all)); // busybox, under both its names
    assert.equal(layers(root).length, 2, 'busybox layer + RUN layer of app:1 stay extracted');
    const started = await root.hull('start', '-a', 'keeper');
    assert.equal(started.stdout, 'b\n', started.stderr);
    await root.ok('rm', 'keeper');
    await root.ok('image', 'prune', '-a', '-f');
    assert.deepEqual(blobs(root), []);
    assert.deepEqual(layers(root), []);
    await root.cleanupAndCheck();
  });

  test('rmi -f of an image in use untags it; it stays until the instance goes', async () => {
    const root = newRoot('gc-rmif');
    await root.ok('tag', 'busybox', 'mine:1');
    await root.ok('rmi', 'busybox');
    await root.ok('create', '--name', 'user', 'mine:1', 'echo', 'still-here');
    const refused = await root.hull('rmi', 'mine:1');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /used by instance user/);
    const forced = await root.hull('rmi', '-f', 'mine:1');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /Untagged: mine:1/);
    assert.doesNotMatch(forced.stdout, /Deleted/);
    await root.ok('image', 'prune', '-a', '-f');
    assert.equal((await root.hull('start', '-a', 'user')).stdout, 'still-here\n');
    await root.ok('rm', 'user');
    const r = JSON.parse(await root.ok('image', 'prune', '-f', '--format', 'json')) as { ImagesDeleted: string[] };
    assert.equal(r.ImagesDeleted.length, 1);
    assert.deepEqual(layers(root), []);
    await root.cleanupAndCheck();
  });

  test('prune -a while a build runs in another process: the build finishes and its image runs', async () => {
    const root = newRoot('gc-concurrent');
    await root.ok('tag', 'busybox', 'base:1');
    await root.ok('rmi', 'busybox');
    // the second RUN waits for the test's go (a file the test makes through hull exec), so the prune surely
    // happens while the build is in the middle of it
    writeFileSync(
      join(work, 'Containerfile.slow'),
      'FROM base:1\nRUN echo one > /one\nRUN echo building; while [ ! -e /go ]; do sleep 0.05; done; rm /go; echo two > /two\nRUN cat /one /two > /both\n',
    );
    const build = root.hull('build', '-t', 'slow:1', '-f', join(work, 'Containerfile.slow'), work);
    // wait until the first RUN layer exists and the second step runs, then prune everything no instance uses
    await waitFor('the first RUN layer', () => (blobs(root).length >= 4 ? true : null), 30_000, 50);
    const [step] = await waitFor(
      "the second RUN step's container",
      async () => {
        const ids = await root.ids();
        return ids.length === 1 && (await root.inspect(ids[0]!)).State.Status === 'running' ? ids : null;
      },
      30_000,
      50,
    );
    const pruned = await root.hull('image', 'prune', '-a', '-f', '--format', 'json');
    assert.equal(pruned.code, 0, pruned.stderr);
    await root.ok('exec', step!, 'touch', '/go');
    const b = await build;
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.equal((await root.hull('run', '--rm', 'slow:1', 'cat', '/both')).stdout, 'one\ntwo\n');
    await root.cleanupAndCheck();
  });
});

describe('image store: an image pruned between resolve and use', () => {
  test('useImage reports it gone instead of recording an instance of it', async () => {
    const dir = mkdtempSync('/tmp/hull-test-gc-store-');
    const store = new ImageStore(dir);
    try {
      const img = await store.resolve('busybox');
      await store.prune({ all: true, inUse: () => new Set() });
      let recorded = false;
      await assert.rejects(
        store.useImage(img, () => {
          recorded = true;
        }),
        /was removed meanwhile/,
      );
      assert.equal(recorded, false);
      // a lease keeps what it retains through a prune
      const again = await store.resolve('busybox');
      const lease = store.lease();
      await store.retain(lease, again.id, again.layers);
      await store.layerDirs(again);
      await store.prune({ all: true, inUse: () => new Set() });
      await store.useImage(again, () => {
        recorded = true;
      });
      assert.equal(recorded, true);
      assert.equal(readdirSync(join(dir, 'layers')).filter((n) => n !== '.tmp').length, 1);
      lease.release();
      await store.prune({ all: true, inUse: () => new Set() });
      assert.deepEqual(
        readdirSync(join(dir, 'layers')).filter((n) => n !== '.tmp'),
        [],
      );
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
