/**
 * A supervisor's exit record (conmon's exits/<id>: the exit code as text, written when the process ends; the
 * VM monitor writes the same): reading it, and waiting for it — watch its directory with inotify, poll as a
 * fallback, and give up waiting when the supervisor itself is gone without writing one. Both instance
 * drivers read and wait this way.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

/** Signal numbers → names, for exit reasons. */
const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  5: 'SIGTRAP',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
};

export interface ExitRecord {
  exitCode: number;
  /** when the record was written (ms since epoch) */
  finishedAt: number;
  /** "killed by signal N (NAME)" for codes 129..192, docker's 128+N convention */
  reason?: string;
}

/** The exit record `<dir>/<id>`, or null while there is none. A malformed code reads as 255. */
export function readExitRecord(dir: string, id: string): ExitRecord | null {
  const file = join(dir, id);
  let code: number;
  let finishedAt: number;
  try {
    code = parseInt(readFileSync(file, 'utf8').trim(), 10);
    finishedAt = statSync(file).mtimeMs;
  } catch {
    return null;
  }
  if (!Number.isFinite(code) || code < 0) code = 255;
  const rec: ExitRecord = { exitCode: code, finishedAt: Math.round(finishedAt) };
  const reason = signalExitReason(code);
  if (reason) rec.reason = reason;
  return rec;
}

/** "killed by signal N (NAME)" for the codes 129..192 (docker's 128+N convention): what such a code says. */
export function signalExitReason(code: number): string | undefined {
  if (code <= 128 || code >= 128 + 65) return undefined;
  const n = code - 128;
  return `killed by signal ${n}${SIGNAL_NAMES[n] ? ` (${SIGNAL_NAMES[n]})` : ''}`;
}

export interface ExitWatch<T> {
  /** the directory the exit record appears in */
  dir: string;
  /** the record, or null while there is none */
  read: () => T | null;
  /** whether the supervisor still runs */
  supervisorAlive: () => boolean;
  /** the record to report when the supervisor died without writing one */
  whenSupervisorDied: () => T;
  /** how often to poll (the watch may miss nothing, but a dead supervisor sends no event) */
  pollMs: number;
  signal?: AbortSignal;
}

export function waitForExitRecord<T>(w: ExitWatch<T>): Promise<T> {
  const first = w.read();
  if (first) return Promise.resolve(first);
  if (w.signal?.aborted) return Promise.reject(w.signal.reason ?? new Error('aborted'));
  return new Promise((resolve, reject) => {
    let watcher: FSWatcher | null = null;
    let timer: NodeJS.Timeout | null = null;
    let settled = false;
    const finish = (err: unknown, info?: T): void => {
      if (settled) return;
      settled = true;
      watcher?.close();
      if (timer) clearInterval(timer);
      w.signal?.removeEventListener('abort', onAbort);
      if (info) resolve(info);
      else reject(err);
    };
    const check = (): void => {
      const info = w.read();
      if (info) finish(null, info);
    };
    const poll = (): void => {
      check();
      if (settled || w.supervisorAlive()) return;
      // the supervisor writes the record just before it exits: look once more
      finish(null, w.read() ?? w.whenSupervisorDied());
    };
    function onAbort(): void {
      finish(w.signal?.reason ?? new Error('aborted'));
    }
    w.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      watcher = watch(w.dir, { persistent: true }, check);
      watcher.on('error', () => {
        watcher?.close();
        watcher = null;
      });
    } catch {
      watcher = null; // no directory (never created) or no inotify: polling decides
    }
    // the record may have appeared before the watch was set up
    check();
    if (!settled) timer = setInterval(poll, w.pollMs);
  });
}
