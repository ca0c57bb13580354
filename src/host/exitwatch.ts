/**
 * Waiting for a supervisor's exit record (conmon's exits/<id>, the VM monitor's): watch its directory with
 * inotify, poll as a fallback, and give up waiting when the supervisor itself is gone without writing one.
 * Both instance drivers wait this way.
 */
import { watch, type FSWatcher } from 'node:fs';

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
