// host/lock.ts: one lock across hull processes and across the concurrent tasks of one process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { holdsLock, lockHolder, LockTimeoutError, withLock } from '../src/host/lock.js';

const LOCK_MODULE = resolve(import.meta.dirname, '../src/host/lock.ts');
const dir = mkdtempSync(join(tmpdir(), 'hull-lock-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('tasks of one process take turns, in order', async () => {
  const path = join(dir, 'order.db');
  const log: string[] = [];
  let releaseFirst!: () => void;
  const firstHolds = new Promise<void>((r) => {
    releaseFirst = r;
  });
  let firstIn!: () => void;
  const firstEntered = new Promise<void>((r) => {
    firstIn = r;
  });
  const a = withLock(path, async () => {
    log.push('a in');
    firstIn();
    await firstHolds;
    log.push('a out');
  });
  await firstEntered;
  const b = withLock(path, async () => {
    log.push('b');
  });
  const c = withLock(path, async () => {
    log.push('c');
  });
  // b and c cannot get in while a holds the lock, whatever the event loop does meanwhile
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['a in']);
  releaseFirst();
  await Promise.all([a, b, c]);
  assert.deepEqual(log, ['a in', 'a out', 'b', 'c']);
});

test('the holder re-enters; an unrelated task of the same process does not', async () => {
  const path = join(dir, 'reentrant.db');
  const log: string[] = [];
  let entered!: () => void;
  const outerIn = new Promise<void>((r) => {
    entered = r;
  });
  let finish!: () => void;
  const outerMayEnd = new Promise<void>((r) => {
    finish = r;
  });
  const outer = withLock(path, async () => {
    assert.equal(holdsLock(path), true);
    await withLock(path, async () => {
      log.push('nested');
    });
    entered();
    await outerMayEnd;
    log.push('outer done');
  });
  await outerIn;
  // started from the test's own context, as a second request of a daemon would be: it waits its turn
  assert.equal(holdsLock(path), false);
  const other = withLock(path, async () => {
    log.push('other');
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['nested']);
  finish();
  await Promise.all([outer, other]);
  assert.deepEqual(log, ['nested', 'outer done', 'other']);
});

test('an error inside lets the lock go', async () => {
  const path = join(dir, 'error.db');
  await assert.rejects(
    withLock(path, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await withLock(path, () => 42), 42);
});

/** A second process that takes the lock and holds it until killed; resolves once it holds it. */
async function holderProcess(path: string) {
  const code = `const { withLock } = await import(${JSON.stringify(LOCK_MODULE)});
    await withLock(${JSON.stringify(path)}, async () => { process.stdout.write('locked\\n'); setInterval(() => {}, 1000); await new Promise(() => {}); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolveReady, reject) => {
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('locked\n')) resolveReady();
    });
    child.once('exit', (c) => reject(new Error(`lock holder exited early (${c})`)));
  });
  return child;
}

test('another process excludes us; its lock dies with it (no stale lock)', async () => {
  const path = join(dir, 'cross.db');
  const child = await holderProcess(path);
  try {
    assert.equal(lockHolder(path), child.pid, '/proc/locks names the holder');
    await assert.rejects(
      withLock(path, () => 'never', { timeoutMs: 200, what: 'the test lock' }),
      (e: unknown) => {
        assert.ok(e instanceof LockTimeoutError);
        assert.match((e as Error).message, new RegExp(`waiting for the test lock: process ${child.pid} holds it`));
        return true;
      },
    );
    const got = withLock(path, () => 'mine');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(await got, 'mine');
  } finally {
    child.kill('SIGKILL');
  }
});

test("a file that is not a lock of hull's is refused with what to do", async () => {
  const path = join(dir, 'foreign.db');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path, 'x'.repeat(4096));
  await assert.rejects(
    withLock(path, () => 1),
    /is not a lock file of hull's .*remove it, then retry/,
  );
});
