/**
 * host/reserve.ts and host/fserror.ts (full disks) on an ordinary directory: the reserve is made only with room for it, made
 * whole or not at all, released once; full-disk errors (SQLite's too) are recognised and described with path and file system.
 * (The behaviour on a really full file system is in e2e-fulldisk.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SpaceReserve } from '../src/host/reserve.js';
import { describeNoSpace, isNoSpace, isNoSpaceError } from '../src/host/fserror.js';

const dir = mkdtempSync('/tmp/hull-test-reserve-');
after(() => rmSync(dir, { recursive: true, force: true }));

test('the reserve is made whole, kept, and released once', () => {
  const r = new SpaceReserve(dir, 256 * 1024);
  assert.equal(r.present, false);
  assert.equal(r.replenish(), true);
  const st = statSync(r.path);
  assert.equal(st.size, 256 * 1024);
  assert.ok(st.blocks * 512 >= 256 * 1024, 'the reserve is sparse');
  assert.equal(r.replenish(), true);
  // plenty of room here: nothing to give back before the store opens
  assert.equal(r.low(), false);
  assert.equal(r.releaseIfFull(), false);
  assert.ok(r.present);
  assert.equal(r.release(), true);
  assert.equal(r.release(), false);
  assert.equal(existsSync(r.path), false);
});

test('a reserve of 0 bytes is off', () => {
  const r = new SpaceReserve(dir, 0);
  assert.equal(r.replenish(), false);
  assert.equal(r.present, false);
});

test('a reserve larger than the free space is not made, and leaves no partial file', () => {
  const r = new SpaceReserve(dir, Number.MAX_SAFE_INTEGER - 1);
  assert.equal(r.replenish(), false);
  assert.equal(r.present, false);
});

test('full-disk errors are told apart', () => {
  assert.ok(isNoSpace(Object.assign(new Error('x'), { code: 'ENOSPC' })));
  assert.ok(isNoSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })));
  assert.ok(!isNoSpace(Object.assign(new Error('x'), { code: 'EACCES' })));
  // an I/O error counts only where the file system really is nearly full, which /tmp here is not
  assert.ok(!isNoSpace(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }), dir));
  assert.ok(!isNoSpace(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' })));
});

test('a full-disk error is described with the path, the file system and its space', () => {
  const e = describeNoSpace(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), {
    path: join(dir, 'blob'),
    action: 'writing a layer',
    needed: 3 * 1024 * 1024,
  });
  assert.ok(isNoSpaceError(e));
  assert.match(
    e.message,
    /^no space left on device writing a layer: \/tmp\/hull-test-reserve-\w+\/blob is on file system \/\S* \(\w+ on \S+\), which has [\d.]+ \w+ free of [\d.]+ \w+, this needs 3\.0 MiB; /,
  );
  // SQLite's full disk reads the same
  const q = describeNoSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), {
    path: join(dir, 'hull.db'),
    action: 'recording',
  });
  assert.ok(isNoSpaceError(q));
  assert.match(q.message, /^no space left on device recording: .*hull\.db is on file system /);
  const other = new Error('other');
  assert.equal(describeNoSpace(other, { path: dir, action: 'x' }), other);
});
