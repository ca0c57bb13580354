/**
 * A lock shared by every hull process on the host and by every concurrent task inside one process (a daemon
 * serves many requests at once), held across asynchronous work.
 *
 * Across processes it is an SQLite exclusive transaction (`BEGIN EXCLUSIVE`) on an otherwise empty database
 * file, as the image store's lock is: SQLite locks with fcntl byte-range locks, which the kernel releases when
 * the holder dies, so a killed hull never leaves a stale lock and nobody has to guess whether a pid in a file
 * is still the owner. fcntl locks belong to a process, not to a task inside it, so inside one process a FIFO of
 * waiters per path orders the tasks first; only the head of the queue asks SQLite. Waiting never blocks the
 * event loop: SQLite is asked without a busy timeout and asked again every few milliseconds.
 *
 * Re-entrancy is by asynchronous context (AsyncLocalStorage), not by process: code that already holds the lock
 * (a network connect inside a start) takes it again at once, while an unrelated request of the same daemon
 * waits its turn.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { HullError } from '../common/errors.js';

/** The locks that the current asynchronous context holds (by path). */
const holding = new AsyncLocalStorage<ReadonlySet<string>>();
/** Per path, the promise that the last waiter of this process resolves when it lets go. */
const queues = new Map<string, Promise<void>>();

const POLL_MS = 10;

export interface LockOptions {
  /** give up after this long (default 60 s) */
  timeoutMs?: number;
  /** what the lock protects, for the timeout message (e.g. "the network lock") */
  what?: string;
}

export class LockTimeoutError extends HullError {
  override readonly code: string = 'HULL_LOCK_TIMEOUT';
}

/** Whether the current asynchronous context holds the lock at `path`. */
export function holdsLock(path: string): boolean {
  return holding.getStore()?.has(path) ?? false;
}

/** Run `fn` while holding the lock at `path` (a file hull owns; made on first use). */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const held = holding.getStore();
  if (held?.has(path)) return fn();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const what = opts.what ?? `the lock ${path}`;
  const deadline = Date.now() + timeoutMs;

  // Queue behind this process's other tasks for the same path.
  const before = queues.get(path) ?? Promise.resolve();
  let letGo!: () => void;
  const mine = new Promise<void>((r) => {
    letGo = r;
  });
  const tail = before.then(() => mine);
  queues.set(path, tail);
  try {
    await waitUntil(
      before,
      deadline,
      () =>
        new LockTimeoutError(
          `timed out after ${timeoutMs / 1000} s waiting for ${what}: another task of this hull process holds it`,
        ),
    );
    const db = await acquire(path, deadline, timeoutMs, what);
    try {
      return await holding.run(new Set([...(held ?? []), path]), fn);
    } finally {
      try {
        db.exec('COMMIT');
      } catch {
        /* the lock goes with the connection anyway */
      }
      db.close();
    }
  } finally {
    letGo();
    if (queues.get(path) === tail) queues.delete(path);
  }
}

async function waitUntil(p: Promise<void>, deadline: number, onTimeout: () => Error): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

let sqlite: typeof BetterSqlite3 | undefined;

function open(path: string): BetterSqlite3.Database {
  // loaded on first use: commands that never lock never pay for it
  sqlite ??= createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  return new sqlite(path, { timeout: 0 });
}

async function acquire(
  path: string,
  deadline: number,
  timeoutMs: number,
  what: string,
): Promise<BetterSqlite3.Database> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (;;) {
    let db: BetterSqlite3.Database | undefined;
    try {
      db = open(path);
      db.exec('BEGIN EXCLUSIVE');
      return db;
    } catch (e) {
      db?.close();
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_NOTADB')
        throw new HullError(`${path} is not a lock file of hull's (not an SQLite database): remove it, then retry`);
      if (code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') throw e;
      if (Date.now() >= deadline) {
        const owner = lockHolder(path);
        throw new LockTimeoutError(
          `timed out after ${timeoutMs / 1000} s waiting for ${what}: ${owner ? `process ${owner} holds it` : 'another hull process holds it'}; retry, or find it with: fuser ${path}`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** The pid that holds a POSIX lock on `path`, from /proc/locks (by device and inode), if any. */
export function lockHolder(path: string): number | undefined {
  try {
    const st = statSync(path);
    const dev = `${((Number(st.dev) >> 8) & 0xfff).toString(16).padStart(2, '0')}:${((Number(st.dev) & 0xff) | ((Number(st.dev) >> 12) & 0xfff00)).toString(16).padStart(2, '0')}:${st.ino}`;
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // "1: POSIX  ADVISORY  WRITE 1234 00:2a:5678 0 EOF" (a "->" marks a waiter)
      if (f[1] === '->') continue;
      if (f[1] === 'POSIX' && f[5] === dev && f[3] === 'WRITE') return Number(f[4]);
    }
  } catch {
    /* no /proc/locks, or the file is gone */
  }
  return undefined;
}
