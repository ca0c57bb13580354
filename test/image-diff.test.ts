/**
 * Layer tars of `hull build` (src/image/diff.ts): the tar writer (long names, whiteouts, opaque markers,
 * hard links), the overlay upper-dir diff, and the merged read-only view of extracted layers.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { LayerView, layerTar, upperDirEntries, type LayerEntry } from '../src/image/diff.js';

const work = mkdtempSync('/tmp/hull-test-diff-');
after(() => rmSync(work, { recursive: true, force: true }));

async function list(
  entries: LayerEntry[],
): Promise<{ path: string; type: string; size: number; uid: number; mode: number; linkpath: string; body: string }[]> {
  const chunks: Buffer[] = [];
  for await (const c of layerTar(entries)) chunks.push(c);
  const buf = Buffer.concat(chunks);
  assert.equal(buf.length % 512, 0);
  const out: { path: string; type: string; size: number; uid: number; mode: number; linkpath: string; body: string }[] =
    [];
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        const parts: Buffer[] = [];
        e.on('data', (d: Buffer) => parts.push(d));
        e.on('end', () =>
          out.push({
            path: e.path,
            type: e.type,
            size: e.size ?? 0,
            uid: e.uid ?? -1,
            mode: e.mode ?? -1,
            linkpath: e.linkpath ?? '',
            body: Buffer.concat(parts).toString(),
          }),
        );
      },
    });
    p.on('end', resolve);
    p.on('error', reject);
    p.end(buf);
  });
  return out;
}

const mknodWhiteout = (p: string) => assert.equal(spawnSync('mknod', ['-m', '0', p, 'c', '0', '0']).status, 0);
const setOpaque = (p: string) =>
  assert.equal(spawnSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', p]).status, 0);

describe('layerTar', () => {
  test('writes files, dirs, symlinks, links, whiteouts and opaque markers with the given owners and modes; long names use PAX', async () => {
    const f = join(work, 'content');
    writeFileSync(f, 'x'.repeat(1000));
    const long = 'd/' + 'n'.repeat(150);
    const t = new Date(1_700_000_000_000);
    const got = await list([
      { path: 'd', type: 'dir', mode: 0o750, uid: 5, gid: 6, mtime: t },
      { path: long, type: 'file', mode: 0o640, uid: 1000, gid: 1000, mtime: t, size: 1000, source: f },
      { path: 'd/hard', type: 'link', linkpath: long, mode: 0o640, uid: 0, gid: 0, mtime: t },
      { path: 'd/sym', type: 'symlink', linkpath: '/' + 't'.repeat(120), mode: 0o777, uid: 0, gid: 0, mtime: t },
      { path: 'gone', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: t },
      { path: 'd', type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: t },
    ]);
    assert.deepEqual(
      got.map((e) => [e.path, e.type]),
      [
        ['d/', 'Directory'],
        [long, 'File'],
        ['d/hard', 'Link'],
        ['d/sym', 'SymbolicLink'],
        ['.wh.gone', 'File'],
        ['d/.wh..wh..opq', 'File'],
      ],
    );
    assert.equal(got[0]!.mode & 0o7777, 0o750);
    assert.equal(got[0]!.uid, 5);
    assert.equal(got[1]!.body, 'x'.repeat(1000));
    assert.equal(got[1]!.uid, 1000);
    assert.equal(got[2]!.linkpath, long);
    assert.equal(got[3]!.linkpath, '/' + 't'.repeat(120));
  });
});

describe('upperDirEntries', () => {
  test('turns overlay whiteouts and opaque dirs into OCI entries, hard links into links, and skips what it is told to', async () => {
    const up = join(work, 'upper');
    mkdirSync(join(up, 'etc'), { recursive: true });
    mkdirSync(join(up, 'opq'));
    writeFileSync(join(up, 'etc', 'hosts'), '');
    writeFileSync(join(up, 'etc', 'app.conf'), 'conf');
    writeFileSync(join(up, 'opq', 'kept'), 'k');
    linkSync(join(up, 'etc', 'app.conf'), join(up, 'etc', 'z-link'));
    symlinkSync('app.conf', join(up, 'etc', 'sym'));
    mknodWhiteout(join(up, 'removed'));
    setOpaque(join(up, 'opq'));
    const got = await upperDirEntries(up, new Set(['etc/hosts']));
    assert.deepEqual(
      got.map((e) => `${e.type}:${e.path}${e.linkpath ? '->' + e.linkpath : ''}`),
      [
        'dir:etc',
        'file:etc/app.conf',
        'symlink:etc/sym->app.conf',
        'link:etc/z-link->etc/app.conf',
        'dir:opq',
        'opaque:opq',
        'file:opq/kept',
        'whiteout:removed',
      ],
    );
  });
});

describe('LayerView', () => {
  test('upper layers win, whiteouts hide, opaque directories hide the layers below', () => {
    const l1 = join(work, 'l1');
    const l2 = join(work, 'l2');
    for (const d of ['a', 'b', 'o']) mkdirSync(join(l1, d), { recursive: true });
    writeFileSync(join(l1, 'a', 'one'), '1');
    writeFileSync(join(l1, 'a', 'two'), '2');
    writeFileSync(join(l1, 'b', 'x'), 'x');
    writeFileSync(join(l1, 'o', 'old'), 'old');
    mkdirSync(join(l2, 'a'), { recursive: true });
    mkdirSync(join(l2, 'o'));
    writeFileSync(join(l2, 'a', 'two'), 'TWO');
    mknodWhiteout(join(l2, 'a', 'one'));
    mknodWhiteout(join(l2, 'b'));
    writeFileSync(join(l2, 'o', 'new'), 'new');
    setOpaque(join(l2, 'o'));
    const v = new LayerView([l1, l2]);
    assert.equal(v.lookup('a/one'), null);
    assert.equal(v.lookup('a/two')!.abs, join(l2, 'a', 'two'));
    assert.equal(v.lookup('b'), null);
    assert.equal(v.lookup('b/x'), null);
    assert.equal(v.lookup('o/old'), null);
    assert.ok(v.lookup('o/new'));
    assert.deepEqual(v.readdir(''), ['a', 'o']);
    assert.deepEqual(v.readdir('a'), ['two']);
    assert.deepEqual(v.readdir('o'), ['new']);
  });
});
