// The image store: OCI layout on disk, built-in busybox, import, names, safe layer extraction,
// whiteouts as overlayfs sees them, integrity checks. Real files, a real overlay mount.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { Header } from 'tar';
import { ImageStore, parseReference, type ImageRecord } from '../src/image/store.js';
import { ConflictError, IntegrityError, InvalidArgumentError, NotFoundError } from '../src/common/errors.js';

const REPO = resolve(import.meta.dirname, '..');
const TMP = mkdtempSync('/tmp/hull-test-images-');
const OUTSIDE = mkdtempSync('/tmp/hull-test-outside-');
const mounts: string[] = [];
const stores: ImageStore[] = [];

after(() => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m]);
    } catch {
      /* not mounted */
    }
  }
  for (const s of stores) s.close();
  rmSync(TMP, { recursive: true, force: true });
  rmSync(OUTSIDE, { recursive: true, force: true });
});

function newStore(root = join(TMP, 'root'), onWarning?: (m: string) => void): ImageStore {
  const s = new ImageStore(root, onWarning ? { onWarning } : {});
  stores.push(s);
  return s;
}

const sha256 = (b: Uint8Array) => 'sha256:' + createHash('sha256').update(b).digest('hex');

interface EntrySpec {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
}

/** A tar built header by header, so that it can hold anything a hostile layer might. */
function makeTar(entries: EntrySpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const data = Buffer.from(e.data ?? '');
    const h = Buffer.alloc(512);
    new Header({
      path: e.path,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: type === 'File' ? data.length : 0,
      mtime: e.mtime ?? new Date('2020-01-02T03:04:05Z'),
      linkpath: e.linkpath ?? '',
      uname: '',
      gname: '',
      devmaj: e.devmaj ?? 0,
      devmin: e.devmin ?? 0,
    }).encode(h);
    blocks.push(h);
    if (type === 'File' && data.length) {
      blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function writeTar(name: string, entries: EntrySpec[], gzip = false): string {
  const p = join(TMP, name);
  const tar = makeTar(entries);
  writeFileSync(p, gzip ? gzipSync(tar) : tar);
  return p;
}

function blobFile(root: string, digest: string): string {
  return join(root, 'images', 'blobs', 'sha256', digest.slice(7));
}

/** Run a snippet in a fresh node process (with tsx) and return its stdout. */
function child(code: string, input?: Buffer): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (status) =>
      status === 0 ? resolvePromise(out) : reject(new Error(`child exited ${status}: ${err}`)),
    );
    p.stdin.end(input ?? '');
  });
}

const storeModule = join(REPO, 'src/image/store.ts');

test('references parse and normalize like docker', () => {
  assert.deepEqual(parseReference('busybox'), {
    name: 'docker.io/library/busybox',
    tag: 'latest',
    display: 'busybox:latest',
    full: 'docker.io/library/busybox:latest',
  });
  assert.equal(parseReference('docker.io/busybox:1.36').full, 'docker.io/library/busybox:1.36');
  assert.equal(parseReference('index.docker.io/library/busybox').display, 'busybox:latest');
  assert.equal(parseReference('me/app:v1.2_3').display, 'me/app:v1.2_3');
  assert.equal(parseReference('localhost:5000/a/b').full, 'localhost:5000/a/b:latest');
  assert.equal(parseReference('quay.io/org/app:1').display, 'quay.io/org/app:1');
  const d = 'sha256:' + 'a'.repeat(64);
  const withDigest = parseReference(`busybox@${d}`);
  assert.equal(withDigest.tag, '');
  assert.equal(withDigest.digest, d);
  assert.equal(withDigest.display, `busybox@${d}`);
  for (const bad of [
    '',
    'Busybox',
    'busy box',
    'busybox:',
    ':tag',
    'a//b',
    '-abc',
    'abc-',
    'a:b:c',
    'busybox:bad?tag',
    'busybox:.dot',
    `busybox@sha256:${'a'.repeat(10)}`,
    'busybox@md5:abc',
    'x'.repeat(256),
    'a/B',
    'a__-b',
  ]) {
    assert.throws(() => parseReference(bad), InvalidArgumentError, `accepted ${JSON.stringify(bad)}`);
  }
});

let busybox: ImageRecord;

test('the built-in busybox image is created on first resolve, as an OCI layout', async () => {
  const store = newStore();
  const root = store.root;
  const t0 = performance.now();
  busybox = await store.resolve('busybox');
  const built = performance.now() - t0;
  assert.deepEqual(busybox.names, ['busybox:latest']);
  assert.match(busybox.id, /^sha256:[a-f0-9]{64}$/);
  assert.deepEqual(busybox.config.config?.Cmd, ['sh']);
  assert.equal(busybox.config.os, 'linux');
  assert.equal(busybox.config.architecture, 'amd64');
  assert.equal(busybox.layers.length, 1);
  assert.equal(busybox.layers[0]!.diffId, busybox.layers[0]!.digest, 'the built-in layer is an uncompressed tar');

  assert.deepEqual(JSON.parse(readFileSync(join(root, 'images/oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(readFileSync(join(root, 'images/index.json'), 'utf8'));
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'docker.io/library/busybox:latest');
  assert.equal(index.manifests[0].digest, busybox.manifestDigest);
  for (const name of readdirSync(join(root, 'images/blobs/sha256'))) {
    assert.equal(
      sha256(readFileSync(join(root, 'images/blobs/sha256', name))),
      `sha256:${name}`,
      'every blob is stored under its digest',
    );
  }

  // an existing image resolves without building or hashing anything
  const fresh = newStore();
  const t1 = performance.now();
  for (const ref of [
    'busybox',
    'busybox:latest',
    'docker.io/library/busybox:latest',
    busybox.id,
    busybox.id.slice(7, 19),
  ]) {
    assert.equal((await fresh.resolve(ref)).id, busybox.id, ref);
  }
  const per = (performance.now() - t1) / 5;
  console.log(`built-in image built in ${built.toFixed(0)} ms; resolve of an existing image ${per.toFixed(2)} ms`);
  assert.ok(per < 20, `resolve took ${per} ms`);
  assert.equal((await store.ensureBuiltin('busybox')).id, busybox.id, 'rebuilding gives the same id');
  assert.equal(JSON.parse(readFileSync(join(root, 'images/index.json'), 'utf8')).manifests.length, 1);
});

test('building busybox concurrently (two stores, two processes) gives one image with one id', async () => {
  const rootA = join(TMP, 'concurrent-a');
  const [a, b] = await Promise.all([
    newStore(rootA).ensureBuiltin('busybox'),
    newStore(rootA).ensureBuiltin('busybox'),
  ]);
  assert.equal(a.id, busybox.id);
  assert.equal(b.id, busybox.id);
  assert.equal(JSON.parse(readFileSync(join(rootA, 'images/index.json'), 'utf8')).manifests.length, 1);

  const rootB = join(TMP, 'concurrent-b');
  const code = `import { ImageStore } from ${JSON.stringify(storeModule)};
    const s = new ImageStore(${JSON.stringify(rootB)}); const img = await s.resolve('busybox');
    const dirs = await s.layerDirs(img); process.stdout.write(img.id + ' ' + dirs.join(':'));`;
  const outs = await Promise.all([child(code), child(code)]);
  const ids = outs.map((o) => o.split(' ')[0]);
  assert.deepEqual(ids, [busybox.id, busybox.id]);
  assert.equal(outs[0], outs[1]);
  const index = JSON.parse(readFileSync(join(rootB, 'images/index.json'), 'utf8'));
  assert.equal(index.manifests.length, 1);
  assert.deepEqual(readdirSync(join(rootB, 'layers')).filter((n) => n !== '.tmp').length, 1);
  assert.deepEqual(readdirSync(join(rootB, 'layers/.tmp')), [], 'no extraction left behind');
  assert.deepEqual(readdirSync(join(rootB, 'images/.tmp')), [], 'no temp blob left behind');
});

test('layerDirs extracts busybox once, with ownership, modes and symlinks', async () => {
  const store = newStore();
  const t0 = performance.now();
  const dirs = await store.layerDirs(busybox);
  const first = performance.now() - t0;
  assert.equal(dirs.length, 1);
  const dir = dirs[0]!;
  assert.equal(dir, join(store.root, 'layers', busybox.layers[0]!.diffId.slice(7)));
  const bb = statSync(join(dir, 'bin/busybox'));
  assert.equal(bb.mode & 0o7777, 0o755);
  assert.equal(bb.uid, 0);
  assert.equal(bb.mtimeMs, 0);
  assert.equal(readlinkSync(join(dir, 'bin/sh')), '/bin/busybox');
  assert.equal(readlinkSync(join(dir, 'usr/bin/wget')), '/bin/busybox');
  assert.equal(statSync(join(dir, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(statSync(dir).mode & 0o7777, 0o755, 'the layer root is traversable');
  assert.match(readFileSync(join(dir, 'etc/passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  assert.match(readFileSync(join(dir, 'etc/passwd'), 'utf8'), /^nobody:x:65534:65534:/m);
  for (const d of ['proc', 'sys', 'dev', 'root', 'home', 'var/www']) assert.ok(statSync(join(dir, d)).isDirectory(), d);
  const t1 = performance.now();
  assert.deepEqual(await store.layerDirs(busybox), dirs);
  const again = performance.now() - t1;
  console.log(`busybox layer extracted in ${first.toFixed(0)} ms; layerDirs when extracted ${again.toFixed(2)} ms`);
  assert.ok(again < 20);
});

const rootfsEntries: EntrySpec[] = [
  { path: 'bin/', type: 'Directory' },
  { path: 'bin/hello', data: '#!/bin/sh\necho hello\n', mode: 0o755 },
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/motd', data: 'imported\n' },
];

test('import of plain and gzip tars, resolve by name and id prefix, config changes', async () => {
  const store = newStore();
  const plain = writeTar('rootfs.tar', rootfsEntries);
  const gz = writeTar('rootfs.tar.gz', rootfsEntries, true);
  const a = await store.importTar(plain, 'test/plain:1', {
    message: 'first',
    changes: { cmd: ['/bin/hello'], env: ['A=1'], workdir: '/etc' },
  });
  assert.deepEqual(a.names, ['test/plain:1']);
  assert.equal(a.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  assert.equal(a.layers[0]!.diffId, sha256(readFileSync(plain)));
  assert.deepEqual(a.config.config, { Env: ['A=1'], Cmd: ['/bin/hello'], WorkingDir: '/etc' });
  assert.equal(a.config.history?.[0]?.comment, 'first');
  assert.equal(a.size, statSync(plain).size);

  const b = await store.importTar(gz, 'gz');
  assert.deepEqual(b.names, ['gz:latest']);
  assert.equal(b.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.equal(b.layers[0]!.digest, sha256(readFileSync(gz)));
  assert.equal(b.layers[0]!.diffId, a.layers[0]!.diffId, 'same tar inside');

  for (const ref of [
    'test/plain:1',
    'docker.io/test/plain:1',
    a.id,
    a.id.slice(7, 15),
    `sha256:${a.id.slice(7, 20)}`,
  ]) {
    assert.equal((await store.resolve(ref)).id, a.id, ref);
  }
  assert.equal((await store.resolve(`test/plain@${a.manifestDigest}`)).id, a.id);
  await assert.rejects(
    store.resolve('test/plain:2'),
    (e: Error) => e instanceof NotFoundError && /image not found: test\/plain:2 \(hull import/.test(e.message),
  );
  await assert.rejects(store.resolve('Bad Ref'), InvalidArgumentError);

  // one layer directory serves both images
  const [da, db] = [await store.layerDirs(a), await store.layerDirs(b)];
  assert.deepEqual(da, db);
  assert.equal(readFileSync(join(da[0]!, 'etc/motd'), 'utf8'), 'imported\n');
  assert.equal(statSync(join(da[0]!, 'bin/hello')).mode & 0o777, 0o755);
  assert.equal(statSync(join(da[0]!, 'etc/motd')).mtime.toISOString(), '2020-01-02T03:04:05.000Z');

  // stdin
  const out = await child(
    `import { ImageStore } from ${JSON.stringify(storeModule)};
    const s = new ImageStore(${JSON.stringify(store.root)}); process.stdout.write((await s.importTar('-', 'from-stdin:x')).id);`,
    readFileSync(gz),
  );
  const c = await store.resolve('from-stdin:x');
  assert.equal(c.id, out);
  assert.equal(c.layers[0]!.digest, b.layers[0]!.digest);

  // not a tar, no such file, a digest as a name
  const junk = join(TMP, 'junk.bin');
  writeFileSync(junk, 'this is not a tar archive at all'.repeat(40));
  await assert.rejects(
    store.importTar(junk, 'junk'),
    (e: Error) => e instanceof InvalidArgumentError && /not a tar archive/.test(e.message),
  );
  await assert.rejects(store.importTar(join(TMP, 'missing.tar'), 'missing'), NotFoundError);
  await assert.rejects(store.importTar(plain, `x@sha256:${'a'.repeat(64)}`), InvalidArgumentError);
  assert.deepEqual(readdirSync(join(store.root, 'images/.tmp')), []);
  assert.equal((await store.list()).filter((i) => i.names.includes('junk:latest')).length, 0);
});

test('tag, untag, remove, dangling images and blob deletion', async () => {
  const store = newStore(join(TMP, 'tags'));
  const root = store.root;
  const one = await store.importTar(writeTar('one.tar', [{ path: 'one', data: '1' }]), 'app:1');
  await store.tag('app:1', 'app:stable');
  await store.tag(one.id.slice(7, 19), 'other/name:x');
  assert.deepEqual((await store.resolve('app:stable')).names, ['app:1', 'app:stable', 'other/name:x']);
  await assert.rejects(store.tag('app:1', 'Bad'), InvalidArgumentError);
  await assert.rejects(store.tag('nope:1', 'x:1'), NotFoundError);

  assert.deepEqual(await store.remove('app:stable'), ['Untagged: app:stable']);
  await assert.rejects(store.remove(one.id), ConflictError, 'two names left: needs force');
  assert.ok(existsSync(blobFile(root, one.manifestDigest)));

  // a new image takes the name app:1; the old one keeps other/name:x
  const two = await store.importTar(writeTar('two.tar', [{ path: 'two', data: '2' }]), 'app:1');
  assert.deepEqual((await store.resolve('app:1')).id, two.id);
  assert.deepEqual((await store.resolve(one.id)).names, ['other/name:x']);
  // and loses it too: it stays, nameless (dangling), so instances made from it keep working
  await store.tag('app:1', 'other/name:x');
  const dangling = await store.resolve(one.id);
  assert.deepEqual(dangling.names, []);
  assert.equal((await store.list()).length, 2);

  const lines = await store.remove(one.id.slice(7, 19));
  assert.deepEqual(lines, [`Deleted: ${one.id}`]);
  for (const d of [one.manifestDigest, one.id, one.layers[0]!.digest])
    assert.ok(!existsSync(blobFile(root, d)), `blob ${d} deleted`);
  for (const d of [two.manifestDigest, two.id, two.layers[0]!.digest])
    assert.ok(existsSync(blobFile(root, d)), `blob ${d} kept`);
  await assert.rejects(store.resolve(one.id), NotFoundError);

  const forced = await store.remove(two.id, { force: true });
  assert.deepEqual(forced, ['Untagged: app:1', 'Untagged: other/name:x', `Deleted: ${two.id}`]);
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(readdirSync(join(root, 'images/blobs/sha256')), []);
  await assert.rejects(store.remove('app:1'), NotFoundError);
});

test('hostile tars never write outside the layer directory', async () => {
  const warnings: string[] = [];
  const store = newStore(join(TMP, 'root'), (m) => warnings.push(m));
  const outsideFile = join(OUTSIDE, 'target.txt');
  writeFileSync(outsideFile, 'original');
  const passwdBefore = statSync('/etc/passwd');
  const mtime = new Date('2001-02-03T04:05:06Z');
  const hostile = writeTar('hostile.tar', [
    { path: '../escape-dotdot', data: 'x' },
    { path: 'a/../../../escape-deep', data: 'x' },
    { path: `${OUTSIDE}/absolute`, data: 'x' },
    { path: 'evil', type: 'SymbolicLink', linkpath: OUTSIDE },
    { path: 'evil/pwned', data: 'pwned' },
    { path: 'evil/sub/', type: 'Directory' },
    { path: 'evil/sub/deeper', data: 'pwned' },
    { path: 'link-file', type: 'SymbolicLink', linkpath: outsideFile },
    { path: 'link-file', data: 'overwritten' },
    { path: 'hl-abs', type: 'Link', linkpath: '/etc/passwd' },
    { path: 'hl-dotdot', type: 'Link', linkpath: '../../../../../../etc/passwd' },
    { path: 'outl', type: 'SymbolicLink', linkpath: OUTSIDE },
    { path: 'hl-via-symlink', type: 'Link', linkpath: 'outl/target.txt' },
    { path: 'outl/hostile', data: 'pwned' },
    { path: 'dev/', type: 'Directory' },
    { path: 'dev/evil-mem', type: 'CharacterDevice', devmaj: 1, devmin: 1, mode: 0o666 },
    { path: 'dev/evil-disk', type: 'BlockDevice', devmaj: 8, devmin: 0, mode: 0o666 },
    { path: 'pipe', type: 'FIFO', mode: 0o640 },
    { path: 'real', data: 'shared', uid: 1234, gid: 5678, mode: 0o4750, mtime },
    { path: 'real-link', type: 'Link', linkpath: 'real' },
    { path: 'dir-then-file/', type: 'Directory' },
    { path: 'dir-then-file/inner', data: 'x' },
    { path: 'dir-then-file', data: 'now a file' },
  ]);
  const img = await store.importTar(hostile, 'hostile:1');
  const [dir] = await store.layerDirs(img);
  assert.ok(dir);

  // outside: untouched
  assert.deepEqual(readdirSync(OUTSIDE).sort(), ['target.txt']);
  assert.equal(readFileSync(outsideFile, 'utf8'), 'original');
  assert.equal(statSync(outsideFile).nlink, 1);
  const passwdAfter = statSync('/etc/passwd');
  assert.equal(passwdAfter.nlink, passwdBefore.nlink);
  assert.equal(passwdAfter.mtimeMs, passwdBefore.mtimeMs);
  for (const p of [
    join(store.root, 'layers/escape-dotdot'),
    join(store.root, 'escape-dotdot'),
    join(store.root, 'escape-deep'),
    '/escape-deep',
  ]) {
    assert.ok(!existsSync(p), p);
  }

  // inside: what was safe to create
  assert.equal(readFileSync(join(dir, OUTSIDE, 'absolute'), 'utf8'), 'x', 'absolute paths land inside the layer');
  assert.ok(lstatSync(join(dir, 'evil')).isSymbolicLink());
  assert.ok(lstatSync(join(dir, 'link-file')).isFile());
  assert.equal(readFileSync(join(dir, 'link-file'), 'utf8'), 'overwritten');
  for (const p of ['hl-abs', 'hl-dotdot', 'hl-via-symlink', 'dev/evil-mem', 'dev/evil-disk'])
    assert.ok(!existsSync(join(dir, p)), p);
  assert.ok(lstatSync(join(dir, 'pipe')).isFIFO());
  assert.equal(lstatSync(join(dir, 'pipe')).mode & 0o7777, 0o640);
  const real = statSync(join(dir, 'real'));
  assert.equal(real.uid, 1234);
  assert.equal(real.gid, 5678);
  assert.equal(real.mode & 0o7777, 0o4750);
  assert.equal(real.mtime.toISOString(), mtime.toISOString());
  assert.equal(statSync(join(dir, 'real-link')).ino, real.ino);
  assert.equal(readFileSync(join(dir, 'dir-then-file'), 'utf8'), 'now a file');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /11 entries not extracted/);
  assert.match(warnings[0]!, /"evil\/pwned": a parent is a symlink/);
  assert.match(warnings[0]!, /"dev\/evil-disk": device nodes are not extracted/);
});

test('whiteouts and opaque directories work as overlayfs lower layers', async () => {
  const store = newStore();
  const root = store.root;
  const l1 = makeTar([
    { path: 'keep/', type: 'Directory' },
    { path: 'keep/a', data: 'a' },
    { path: 'gone', data: 'bye' },
    { path: 'gonedir/', type: 'Directory' },
    { path: 'gonedir/x', data: 'x' },
    { path: 'opq/', type: 'Directory' },
    { path: 'opq/lower-only', data: 'hidden' },
  ]);
  const l2Tar = makeTar([
    { path: '.wh.gone', data: '' },
    { path: '.wh.gonedir', data: '' },
    { path: 'keep/.wh.never-existed', data: '' },
    { path: 'opq/', type: 'Directory' },
    { path: 'opq/.wh..wh..opq', data: '' },
    { path: 'opq/upper', data: 'visible' },
    { path: '.wh..wh.plnk/', type: 'Directory' },
  ]);
  const l2 = gzipSync(l2Tar);
  // a two-layer image written straight into the OCI layout, as another tool would
  const blobs = join(root, 'images/blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const d = sha256(b);
    writeFileSync(join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const cfg = {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [sha256(l1), sha256(l2Tar)] },
  };
  const c = put(Buffer.from(JSON.stringify(cfg)));
  const layer1 = put(l1);
  const layer2 = put(l2);
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer1 },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer2 },
        ],
      }),
    ),
  );
  const indexPath = join(root, 'images/index.json');
  const index = existsSync(indexPath)
    ? JSON.parse(readFileSync(indexPath, 'utf8'))
    : { schemaVersion: 2, manifests: [] };
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...manifest,
    annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/wh:latest' },
  });
  writeFileSync(indexPath, JSON.stringify(index));

  const img = await store.resolve('wh');
  const dirs = await store.layerDirs(img);
  assert.equal(dirs.length, 2);
  const [lower, upper] = dirs as [string, string];
  const wh = lstatSync(join(upper, 'gone'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.ok(lstatSync(join(upper, 'gonedir')).isCharacterDevice());
  assert.ok(!existsSync(join(upper, '.wh.gone')));
  assert.ok(lstatSync(join(upper, 'keep/never-existed')).isCharacterDevice());
  assert.ok(!existsSync(join(upper, '.wh..wh.plnk')), 'aufs bookkeeping is dropped');
  assert.equal(
    execFileSync(
      'getfattr',
      ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', join(upper, 'opq')],
      { encoding: 'utf8' },
    ),
    'y',
  );

  const merged = join(TMP, 'merged');
  mkdirSync(merged);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${upper}:${lower}`, merged]);
  mounts.push(merged);
  try {
    assert.ok(!existsSync(join(merged, 'gone')), 'whited-out file is gone');
    assert.ok(!existsSync(join(merged, 'gonedir')), 'whited-out directory is gone');
    assert.equal(readFileSync(join(merged, 'keep/a'), 'utf8'), 'a');
    assert.deepEqual(readdirSync(join(merged, 'opq')), ['upper'], 'the opaque directory hides the lower content');
    assert.deepEqual(readdirSync(merged).sort(), ['keep', 'opq']);
  } finally {
    execFileSync('umount', [merged]);
    mounts.pop();
  }
});

test('a corrupted layer blob fails with IntegrityError and leaves no layer behind', async () => {
  const store = newStore(join(TMP, 'corrupt'));
  const entries = [
    { path: 'data', data: 'z'.repeat(8192) },
    { path: 'more', data: 'y'.repeat(100) },
  ];
  // flip bytes in file data, in a tar header (checksum failure), in gzip data
  for (const [name, gz, where] of [
    ['data', false, 1024],
    ['header', false, 600],
    ['gzip', true, -1],
  ] as const) {
    const img = await store.importTar(
      writeTar(`corrupt-${name}.tar`, entries.concat([{ path: name, data: name }]), gz),
      `corrupt:${name}`,
    );
    const blob = blobFile(store.root, img.layers[0]!.digest);
    const bytes = readFileSync(blob);
    const at = where >= 0 ? where : Math.floor(bytes.length / 2);
    bytes[at] ^= 0xff;
    bytes[at + 1] ^= 0xff;
    writeFileSync(blob, bytes);
    await assert.rejects(
      store.layerDirs(img),
      (e: Error) => e instanceof IntegrityError && /corrupt/.test(e.message),
      name,
    );
    assert.ok(!existsSync(join(store.root, 'layers', img.layers[0]!.diffId.slice(7))), `${name}: no layer dir`);
    assert.deepEqual(readdirSync(join(store.root, 'layers/.tmp')), [], `${name}: no partial extraction`);
  }
  // a layer whose diffID in the config does not match the tar
  const img = await store.importTar(writeTar('ok.tar', [{ path: 'ok', data: 'ok' }]), 'okay');
  const lying = { ...img, layers: [{ ...img.layers[0]!, diffId: `sha256:${'0'.repeat(64)}` }] };
  await assert.rejects(store.layerDirs(lying), IntegrityError);
  assert.ok(!existsSync(join(store.root, 'layers', '0'.repeat(64))));
});

test('parallel layerDirs from two stores share one extraction result', async () => {
  const root = join(TMP, 'parallel');
  const a = newStore(root);
  const img = await a.importTar(writeTar('par.tar', rootfsEntries.concat([{ path: 'x', data: 'x' }])), 'par');
  const b = newStore(root);
  const [da, db] = await Promise.all([a.layerDirs(img), b.layerDirs(await b.resolve('par'))]);
  assert.deepEqual(da, db);
  assert.equal(readFileSync(join(da[0]!, 'x'), 'utf8'), 'x');
  assert.deepEqual(readdirSync(join(root, 'layers')).sort(), ['.tmp', img.layers[0]!.diffId.slice(7)].sort());
  assert.deepEqual(readdirSync(join(root, 'layers/.tmp')), []);
});
