/** Unit: resolving paths inside a root (src/common/rootpath.ts) on a real directory tree. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_SYMLINKS, SymlinkLoopError, resolveInDir } from '../src/common/rootpath.js';

const root = mkdtempSync('/tmp/hull-test-rootpath-');
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'a/b'), { recursive: true });
writeFileSync(join(root, 'a/b/file'), 'x');
symlinkSync('/etc', join(root, 'hostetc')); // absolute: restarts at the root
symlinkSync('/loop', join(root, 'loop')); // absolute, to itself: a loop
symlinkSync('../../../../..', join(root, 'a/up')); // climbs: stops at the root
symlinkSync('b', join(root, 'a/rel'));
symlinkSync('/a/b/file', join(root, 'filelink'));
symlinkSync('self', join(root, 'self'));
symlinkSync('ping', join(root, 'pong'));
symlinkSync('pong', join(root, 'ping'));
// a chain of MAX_SYMLINKS links ends at a real directory; one more link is one too many
for (let i = 0; i < MAX_SYMLINKS; i++) symlinkSync(i === MAX_SYMLINKS - 1 ? '/a' : `c${i + 1}`, join(root, `c${i}`));
symlinkSync('c0', join(root, 'cstart'));

describe('resolveInDir', () => {
  test('links resolve inside the root: absolute targets restart there, .. stops there', () => {
    assert.equal(resolveInDir(root, 'hostetc/shadow', true), 'etc/shadow');
    assert.equal(resolveInDir(root, '/a/up/hostetc/passwd', true), 'etc/passwd');
    assert.equal(resolveInDir(root, 'a/up/a/rel/file', true), 'a/b/file');
    assert.equal(resolveInDir(root, '../../a/b/../rel', true), 'a/b');
  });
  test('the last component is followed only when asked', () => {
    assert.equal(resolveInDir(root, 'filelink', false), 'filelink');
    assert.equal(resolveInDir(root, 'filelink', true), 'a/b/file');
    assert.equal(resolveInDir(root, 'a/rel', false), 'a/rel');
  });
  test('missing components are kept as written; nothing below a file', () => {
    assert.equal(resolveInDir(root, 'a/missing/x/../y', true), 'a/missing/y');
    assert.equal(resolveInDir(root, 'a/b/file/x', true), 'a/b/file/x');
  });
  test(`loops and chains past ${MAX_SYMLINKS} links fail with ELOOP's message`, () => {
    assert.throws(() => resolveInDir(root, 'self/x', true), SymlinkLoopError);
    assert.throws(() => resolveInDir(root, 'loop/passwd', true), SymlinkLoopError);
    assert.throws(() => resolveInDir(root, 'ping', true), /too many levels of symbolic links/);
    assert.equal(resolveInDir(root, 'c0/b', true), 'a/b');
    assert.throws(() => resolveInDir(root, 'cstart/b', true), SymlinkLoopError);
  });
});
