/**
 * hull pull and push against a real registry (Debian's docker-registry) behind a fault-injecting proxy
 * (helpers/fault-proxy.ts): stalls, cut connections, registries without range requests, 5xx answers,
 * interrupted and killed pulls, concurrent pulls of one image, a full disk, malformed references.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { DIST, HullRoot, waitFor, type HullResult } from './helpers/hull.js';
import { FaultProxy } from './helpers/fault-proxy.js';
import { OciLayoutBuilder, skopeo, startDockerRegistry, type Desc, type RunningRegistry } from './helpers/registry.js';

const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
const MiB = 1024 * 1024;
const work = mkdtempSync('/tmp/hull-test-regfaults-work-');
const roots: HullRoot[] = [];
const newRoot = (name: string, env: Record<string, string> = {}) => {
  const r = new HullRoot(name, env);
  roots.push(r);
  return r;
};
let registry: RunningRegistry;
let proxy: FaultProxy;
/** an 8 MiB layer of random bytes (uncompressed tar) and a small one, under big/img:1 */
let big: { layer: Desc; small: Desc; config: string };
/** a 40 MiB layer, under huge/img:1 */
let huge: Desc;

/** An uncompressed tar layer with one file of `content`. */
function tarLayer(layout: OciLayoutBuilder, name: string, content: Buffer): { desc: Desc; diffId: string } {
  const dir = mkdtempSync(join(work, 'layer-'));
  mkdirSync(join(dir, 'root'));
  writeFileSync(join(dir, 'root', name), content);
  const r = spawnSync('tar', [
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-C',
    join(dir, 'root'),
    '-cf',
    join(dir, 'l.tar'),
    '.',
  ]);
  assert.equal(r.status, 0, String(r.stderr));
  const tar = readFileSync(join(dir, 'l.tar'));
  rmSync(dir, { recursive: true, force: true });
  const desc = layout.blob('application/vnd.oci.image.layer.v1.tar', tar);
  return { desc, diffId: desc.digest };
}

before(async () => {
  registry = await startDockerRegistry();
  proxy = new FaultProxy(registry.host);
  await proxy.start();
  const layout = new OciLayoutBuilder(join(work, 'layout'));
  const a = tarLayer(layout, 'random.bin', randomBytes(8 * MiB));
  const b = tarLayer(layout, 'small.txt', Buffer.from('small\n'));
  const img = layout.image([a.desc, b.desc], [a.diffId, b.diffId], HOST_ARCH);
  layout.name(img, 'big');
  const h = tarLayer(layout, 'huge.bin', randomBytes(40 * MiB));
  layout.name(layout.image([h.desc], [h.diffId], HOST_ARCH), 'huge');
  skopeo('copy', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:big`, `docker://${registry.host}/big/img:1`);
  skopeo('copy', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:huge`, `docker://${registry.host}/huge/img:1`);
  // skopeo compresses the layers on the way up: the registry's manifests name the blobs
  const manifestOf = async (repo: string) =>
    (await (
      await fetch(`http://${registry.host}/v2/${repo}/manifests/1`, {
        headers: {
          Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      })
    ).json()) as { config: Desc; layers: Desc[] };
  const m = await manifestOf('big/img');
  big = { layer: m.layers[0]!, small: m.layers[1]!, config: m.config.digest };
  huge = (await manifestOf('huge/img')).layers[0]!;
  rmSync(join(work, 'layout'), { recursive: true, force: true });
});

after(async () => {
  for (const r of roots) await r.dispose();
  await proxy?.stop();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** What a root's image store holds besides blobs: temp files, downloads (partials, claims), leases. */
function scratch(root: HullRoot): { tmp: string[]; downloads: string[]; leases: string[] } {
  const list = (d: string) => (existsSync(join(root.dir, 'images', d)) ? readdirSync(join(root.dir, 'images', d)) : []);
  return { tmp: list('.tmp'), downloads: list('.downloads'), leases: list('.leases') };
}

const partialOf = (root: HullRoot, digest: string) => join(root.dir, 'images', '.downloads', `${digest.slice(7)}.part`);
const sizeOf = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};
const fileDigest = (path: string) => 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');

/** `hull pull` in the background, for signals: the child and its result. */
function pullInBackground(
  root: HullRoot,
  ref: string,
  env: Record<string, string> = {},
): { pid: number; kill: (sig: NodeJS.Signals) => void; done: Promise<HullResult> } {
  const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'pull', ref], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const started = Date.now();
  const done = new Promise<HullResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started })),
  );
  return { pid: child.pid!, kill: (sig) => child.kill(sig), done };
}

const isBlob = (digest: string) => (r: { method: string; path: string }) =>
  r.method === 'GET' && r.path.includes(`/blobs/${digest}`);

describe('stalls', () => {
  test('a registry that accepts the connection and never answers the manifest: retried, then one line naming the stall', async () => {
    proxy.fault = (r) => (r.path.includes('/manifests/') ? { stallHead: true } : undefined);
    const before = proxy.requests.length;
    const root = newRoot('regfaults-stall-head');
    const r = await root.hullWith(
      { env: { HULL_REGISTRY_ATTEMPTS: '2' } },
      'pull',
      '--stall-timeout',
      '2',
      `${proxy.host}/big/img:1`,
    );
    proxy.fault = () => undefined;
    proxy.dropConnections();
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^hull: registry 127\.0\.0\.1:\d+ stalled: no data for 2 s on GET \/v2\/big\/img\/manifests\/1 \(after 2 attempts\); check the registry and the network, or raise the stall timeout \(--stall-timeout, HULL_REGISTRY_STALL_TIMEOUT\)\n$/,
    );
    assert.equal(proxy.requests.slice(before).filter((q) => q.path.includes('/manifests/')).length, 2);
  });

  test('a layer that stalls mid-body: each retry resumes with a range request; then one line; a later pull resumes and verifies', async () => {
    proxy.fault = (r) => (isBlob(big.layer.digest)(r) ? { stallAfter: 1.5 * MiB } : undefined);
    const root = newRoot('regfaults-stall-body', { HULL_REGISTRY_STALL_TIMEOUT: '2s', HULL_REGISTRY_ATTEMPTS: '2' });
    const before = proxy.blobGets(big.layer.digest).length;
    const r = await root.hull('pull', `${proxy.host}/big/img:1`);
    proxy.fault = () => undefined;
    proxy.dropConnections();
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /hull: downloading layer sha256:[0-9a-f]{64} of 127\.0\.0\.1:\d+\/big\/img:1 from registry 127\.0\.0\.1:\d+ stalled: no data for 2 s, 2 attempts; check the registry and the network, or raise the stall timeout/,
    );
    const gets = proxy.blobGets(big.layer.digest).slice(before);
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    assert.equal(gets[1]!.range, `bytes=${1.5 * MiB}-`, 'the retry asks for the rest');
    assert.equal(sizeOf(partialOf(root, big.layer.digest)), 3 * MiB, 'the partial is kept for a resume');
    assert.deepEqual(scratch(root).tmp, []);

    const again = await root.hull('pull', `${proxy.host}/big/img:1`);
    assert.equal(again.code, 0, again.stderr);
    const last = proxy.blobGets(big.layer.digest).at(-1)!;
    assert.equal(last.range, `bytes=${3 * MiB}-`);
    assert.equal(last.status, 206);
    assert.equal(fileDigest(join(root.dir, 'images', 'blobs', 'sha256', big.layer.digest.slice(7))), big.layer.digest);
    assert.deepEqual(scratch(root), { tmp: [], downloads: [], leases: [] });
  });

  test('a push whose upload stalls: retried, then one line', async () => {
    proxy.fault = (r) => (r.method === 'PUT' || r.method === 'PATCH' ? { stallHead: true } : undefined);
    const root = newRoot('regfaults-push');
    const r = await root.hullWith(
      { env: { HULL_REGISTRY_ATTEMPTS: '2' } },
      'push',
      '--stall-timeout',
      '1500ms',
      'busybox',
      `${proxy.host}/pushed/bb:1`,
    );
    proxy.fault = () => undefined;
    proxy.dropConnections();
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^hull: registry 127\.0\.0\.1:\d+ stalled: no data for 1\.5 s on PUT \/v2\/pushed\/bb\/blobs\/uploads\/[^ ]+ \(after 2 attempts\)/,
    );
  });
});

describe('cut connections and 5xx', () => {
  test('a 503 for the manifest and a layer cut in the middle: retried, the layer resumed', async () => {
    let manifests = 0;
    let cuts = 0;
    proxy.fault = (r) => {
      if (r.path.includes('/manifests/') && manifests++ === 0) return { status: 503 };
      if (isBlob(big.layer.digest)(r) && cuts++ === 0) return { cutAfter: 2 * MiB };
      return undefined;
    };
    const root = newRoot('regfaults-cut');
    const before = proxy.blobGets(big.layer.digest).length;
    const r = await root.hull('pull', `${proxy.host}/big/img:1`);
    proxy.fault = () => undefined;
    assert.equal(r.code, 0, r.stderr);
    const gets = proxy.blobGets(big.layer.digest).slice(before);
    assert.equal(gets.length, 2);
    assert.equal(gets[1]!.range, `bytes=${2 * MiB}-`);
    assert.deepEqual(scratch(root), { tmp: [], downloads: [], leases: [] });
  });
});

describe('interrupted pulls', () => {
  test('kill -9 in the middle of a layer: the next pull takes the dead claim over and resumes with a range request', async () => {
    let first = true;
    proxy.fault = (r) =>
      isBlob(big.layer.digest)(r) && first ? ((first = false), { stallAfter: 3 * MiB }) : undefined;
    const root = newRoot('regfaults-kill');
    const p = pullInBackground(root, `${proxy.host}/big/img:1`);
    const partial = partialOf(root, big.layer.digest);
    await waitFor('2 MiB in the partial', () => sizeOf(partial) >= 2 * MiB, 30_000);
    p.kill('SIGKILL');
    const killed = await p.done;
    assert.equal(killed.signal, 'SIGKILL');
    proxy.dropConnections();
    const have = sizeOf(partial);
    assert.ok(existsSync(partial.replace(/\.part$/, '.owner')), "the dead process's claim is still there");

    const r = await root.hull('pull', `${proxy.host}/big/img:1`);
    assert.equal(r.code, 0, r.stderr);
    const last = proxy.blobGets(big.layer.digest).at(-1)!;
    assert.equal(last.range, `bytes=${have}-`);
    assert.equal(last.status, 206);
    assert.equal(fileDigest(join(root.dir, 'images', 'blobs', 'sha256', big.layer.digest.slice(7))), big.layer.digest);
    assert.deepEqual(scratch(root).downloads, []);
    assert.deepEqual(scratch(root).tmp, []);
  });

  test('SIGINT in the middle of a layer: exit 130, the partial kept, no temp file, claim or lease; image prune removes it once old', async () => {
    proxy.fault = (r) => (isBlob(big.layer.digest)(r) ? { stallAfter: 3 * MiB } : undefined);
    const root = newRoot('regfaults-sigint');
    const p = pullInBackground(root, `${proxy.host}/big/img:1`);
    const partial = partialOf(root, big.layer.digest);
    await waitFor('2 MiB in the partial', () => sizeOf(partial) >= 2 * MiB, 30_000);
    p.kill('SIGINT');
    const r = await p.done;
    proxy.fault = () => undefined;
    proxy.dropConnections();
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /hull: pull of 127\.0\.0\.1:\d+\/big\/img:1 interrupted \(SIGINT\)\n$/);
    assert.equal(sizeOf(partial), 3 * MiB, 'what arrived is on disk');
    assert.deepEqual(scratch(root), { tmp: [], downloads: [`${big.layer.digest.slice(7)}.part`], leases: [] });
    assert.ok(
      !readdirSync(join(root.dir, 'images', 'blobs', 'sha256')).includes(big.layer.digest.slice(7)),
      'a partial is never a blob',
    );

    await root.ok('image', 'prune');
    assert.equal(sizeOf(partial), 3 * MiB, 'a fresh partial survives a prune');
    const old = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(partial, old, old);
    await root.ok('image', 'prune');
    assert.ok(!existsSync(partial), 'an hour-old partial is collected');
  });

  test('SIGINT against a registry without range requests: nothing is left behind', async () => {
    proxy.fault = (r) => (isBlob(big.layer.digest)(r) ? { stallAfter: 3 * MiB, refuseRange: true } : undefined);
    const root = newRoot('regfaults-sigint-norange');
    const p = pullInBackground(root, `${proxy.host}/big/img:1`);
    await waitFor('2 MiB in the partial', () => sizeOf(partialOf(root, big.layer.digest)) >= 2 * MiB, 30_000);
    p.kill('SIGINT');
    const r = await p.done;
    proxy.fault = () => undefined;
    proxy.dropConnections();
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(scratch(root), { tmp: [], downloads: [], leases: [] });
  });
});

describe('concurrent pulls', () => {
  test('a puller waiting for a stuck one (SIGSTOP) says who it waits for; once that one is killed, the next pull takes over', async () => {
    let first = true;
    proxy.fault = (r) =>
      isBlob(big.layer.digest)(r) && first ? ((first = false), { stallAfter: 3 * MiB }) : undefined;
    const root = newRoot('regfaults-stuck');
    const a = pullInBackground(root, `${proxy.host}/big/img:1`);
    await waitFor('2 MiB in the partial', () => sizeOf(partialOf(root, big.layer.digest)) >= 2 * MiB, 30_000);
    a.kill('SIGSTOP');
    try {
      const r = await root.hullWith(
        { env: { HULL_REGISTRY_STALL_TIMEOUT: '1', HULL_REGISTRY_ATTEMPTS: '1' } },
        'pull',
        `${proxy.host}/big/img:1`,
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `hull: layer ${big.layer.digest} of 127\\.0\\.0\\.1:\\d+/big/img:1 is being downloaded by hull process ${a.pid}, which has made no progress for \\d+ s; wait for it or stop it, then pull again\\n$`,
        ),
      );
    } finally {
      a.kill('SIGKILL');
    }
    await a.done;
    proxy.dropConnections();
    const r = await root.hull('pull', `${proxy.host}/big/img:1`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(proxy.blobGets(big.layer.digest).at(-1)!.range ?? '', /^bytes=\d+-$/);
    assert.deepEqual(scratch(root).downloads, []);
    assert.equal(scratch(root).leases.length, 1, "the killed pull's lease, until a collector sees its process is gone");
    await root.ok('image', 'prune');
    assert.deepEqual(scratch(root), { tmp: [], downloads: [], leases: [] });
  });

  test('five hull pull processes of one image: each blob comes from the registry once', async () => {
    const root = newRoot('regfaults-concurrent');
    const start = proxy.requests.length;
    const since = () => proxy.requests.slice(start);
    // blobs are held back until all five have their manifest, so that the other four find the first one's downloads under way
    const allResolved = proxy.until(() => since().filter((q) => q.path.endsWith('/manifests/1')).length >= 5);
    proxy.fault = (r) => (r.path.includes('/blobs/') ? { hold: allResolved } : undefined);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => root.hull('pull', '-q', `${proxy.host}/big/img:1`)),
    );
    proxy.fault = () => undefined;
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(new Set(results.map((r) => r.stdout)).size, 1, 'one image');
    for (const digest of [big.layer.digest, big.small.digest, big.config]) {
      assert.equal(
        since().filter(isBlob(digest)).length,
        1,
        `GETs of ${digest}: ${since().filter(isBlob(digest)).length}`,
      );
    }
    assert.deepEqual(scratch(root), { tmp: [], downloads: [], leases: [] });
  });
});

describe('local errors', () => {
  test('a full disk: no retry, one line naming the path, the file system and the space', async (t) => {
    const root = newRoot('regfaults-enospc');
    const img = join(work, 'small-fs.img');
    writeFileSync(img, '');
    assert.equal(spawnSync('truncate', ['-s', '32M', img]).status, 0);
    const mkfs = spawnSync('mkfs.ext4', ['-q', '-F', img], { encoding: 'utf8' });
    if (mkfs.status !== 0) return t.skip(`mkfs.ext4 failed: ${mkfs.stderr}`);
    const mount = spawnSync('mount', ['-o', 'loop', img, root.dir], { encoding: 'utf8' });
    if (mount.status !== 0) return t.skip(`cannot loop-mount here: ${mount.stderr}`);
    try {
      const before = proxy.blobGets(huge.digest).length;
      const r = await root.hull('pull', `${proxy.host}/huge/img:1`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `\nhull: no space left on device writing layer sha256:[0-9a-f]{12}… of 127\\.0\\.0\\.1:\\d+/huge/img:1: ${root.dir}/images/\\.downloads/${huge.digest.slice(7)}\\.part is on file system ${root.dir} \\(ext4 on /dev/loop\\d+\\), which has [\\d.]+ (KiB|MiB|B) free of [\\d.]+ MiB, this needs 40\\.\\d MiB; free space there or use a hull root \\(--root\\) on a larger file system\\n$`,
        ),
      );
      assert.equal(proxy.blobGets(huge.digest).length - before, 1, 'not retried');
      assert.deepEqual(
        scratch(root),
        { tmp: [], downloads: [], leases: [] },
        'the partial that filled the disk is gone',
      );
    } finally {
      spawnSync('umount', [root.dir]); // mount -o loop detaches the loop device with it
    }
    await root.cleanupAndCheck();
  });
});

describe('references', () => {
  test("uppercase repository names fail at once with docker's message; an uppercase first component is a host, as in docker", async () => {
    const root = newRoot('regfaults-refs');
    const before = proxy.requests.length;
    let r = await root.hull('pull', 'UPPER');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'hull: invalid reference format: repository name (library/UPPER) must be lowercase\n');
    r = await root.hull('pull', `${proxy.host}/Big/img:1`);
    assert.equal(r.stderr, 'hull: invalid reference format: repository name (Big/img) must be lowercase\n');
    r = await root.hull('pull', 'a//b');
    assert.equal(r.stderr, 'hull: invalid reference format: "a//b": it has an empty path component\n');
    assert.equal(proxy.requests.length, before);
    // docker reads UPPER/case as repository "case" on host "UPPER": the name service does not know it, which is final (no retries)
    r = await root.hull('pull', 'UPPER/case');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^hull: registry UPPER is not reachable at https:\/\/UPPER: host not found \(ENOTFOUND\); "UPPER" was taken for a registry host because it has uppercase letters \(as docker does\); repository names must be lowercase\n$/,
    );
  });

  test('roots leave nothing behind', async () => {
    for (const r of roots) await r.cleanupAndCheck();
  });
});
