/**
 * xattrs in layer tars (src/image/tar-xattrs.ts): file capabilities and user.* attributes survive
 * `hull import`/pull (extraction) and `hull build` (layers made from an upper directory), binary-safe,
 * interoperable with GNU tar; trusted.* never comes out of a layer.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XattrScanner, parsePaxRecords } from '../src/image/tar-xattrs.js';
import { layerTar, upperDirEntries } from '../src/image/diff.js';
import { HullRoot } from './helpers/hull.js';

const CAP_NET_RAW = '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA='; // vfs_cap_data v2, permitted+effective cap_net_raw
const work = mkdtempSync('/tmp/hull-test-xattrs-');
const root = new HullRoot('xattrs');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

const run = (argv: string[], input?: Buffer) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const getfattr = (path: string) =>
  run(['getfattr', '--absolute-names', '-d', '-m', '-', '-e', 'base64', path]).toString();

/** A tree with a capability binary, a user.* attribute on a directory, and a trusted.* attribute. */
function tree(dir: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'data'));
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  run(['setfattr', '-n', 'security.capability', '-v', CAP_NET_RAW, join(dir, 'bin', 'busybox')]);
  run(['setfattr', '-n', 'user.note', '-v', 'hello', join(dir, 'bin', 'busybox')]);
  run(['setfattr', '-n', 'trusted.overlay.redirect', '-v', '/elsewhere', join(dir, 'bin', 'busybox')]);
  run(['setfattr', '-n', 'user.dir', '-v', '0x00ff00', join(dir, 'data')]);
  writeFileSync(join(dir, 'data', 'f'), 'x');
}

test('the scanner reads GNU tar --xattrs records binary-safe, keeps capabilities and user.*, drops trusted.*', () => {
  const src = join(work, 'gnu');
  tree(src);
  const tar = run(['tar', '--xattrs', '--xattrs-include=*', '-C', src, '-cf', '-', '.']);
  const s = new XattrScanner();
  for (let i = 0; i < tar.length; i += 777) s.write(tar.subarray(i, i + 777)); // odd chunk sizes
  assert.deepEqual([...s.found.keys()].sort(), ['./bin/busybox', './data/']);
  const bb = s.found.get('./bin/busybox')!;
  assert.deepEqual(Object.keys(bb).sort(), ['security.capability', 'user.note']);
  assert.equal(bb['security.capability']!.toString('base64'), CAP_NET_RAW.slice(2));
  assert.deepEqual([...s.found.get('./data/')!['user.dir']!], [0, 255, 0]);
  assert.equal(parsePaxRecords(Buffer.from('20 path=a/b/c/d/e/f\n')).get('path')!.toString(), 'a/b/c/d/e/f');
});

test('a layer made from an upper directory carries them; GNU tar extracts them; trusted.* stays out', async () => {
  const upper = join(work, 'upper');
  tree(upper);
  const chunks: Buffer[] = [];
  // the trusted.overlay.redirect attribute of the fixture is exactly what upperDirEntries refuses
  await assert.rejects(upperDirEntries(upper), /overlay wrote a trusted.overlay.redirect xattr/);
  run(['setfattr', '-x', 'trusted.overlay.redirect', join(upper, 'bin', 'busybox')]);
  for await (const c of layerTar(await upperDirEntries(upper))) chunks.push(c);
  const tar = Buffer.concat(chunks);
  const out = join(work, 'gnu-out');
  mkdirSync(out);
  run(['tar', '--xattrs', '--xattrs-include=*', '-C', out, '-xf', '-'], tar);
  const attrs = getfattr(join(out, 'bin', 'busybox'));
  assert.match(attrs, new RegExp(`security.capability=${CAP_NET_RAW.replace(/[+/=]/g, '\\$&')}`));
  assert.match(attrs, /user.note=0saGVsbG8=/);
  assert.match(getfattr(join(out, 'data')), /user.dir=0sAP8A/);
  assert.equal(readFileSync(join(out, 'data', 'f'), 'utf8'), 'x');
});

test('hull import of a tar with a capability binary: extracted with it, and the container gets cap_net_raw from it', async () => {
  const src = join(work, 'img');
  tree(src);
  const tarPath = join(work, 'caps.tar');
  run(['tar', '--xattrs', '--xattrs-include=*', '-C', src, '-cf', tarPath, '.']);
  await root.ok('import', tarPath, 'caps:1');
  const status = await root.ok(
    'run',
    '--rm',
    '-u',
    '1000',
    '--security-opt',
    'no-new-privileges=false',
    'caps:1',
    '/bin/busybox',
    'grep',
    'CapEff',
    '/proc/self/status',
  );
  assert.match(status, /CapEff:\s+0000000000002000/);
  const layers = run([
    'sh',
    '-c',
    `getfattr --absolute-names -d -m - -e base64 ${root.dir}/layers/*/bin/busybox`,
  ]).toString();
  assert.match(layers, /security.capability=/);
  assert.match(layers, /user.note=/);
  assert.doesNotMatch(layers, /trusted/);
  await root.cleanupAndCheck();
});
