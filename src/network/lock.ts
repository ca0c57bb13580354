/**
 * A cross-process lock for a hull root's network state (definitions, DNS files, port choices): an
 * O_EXCL lock file holding the owner's pid. A lock whose owner died (a killed hull) is taken over.
 * Held for the few hundred milliseconds of a CNI ADD/DEL, so polling is good enough.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { processAlive } from '../host/proc.js';
import { HullError } from '../common/errors.js';

const held = new Map<string, number>();

export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  // re-entrant within one process (connect inside a start, for instance)
  if (held.has(path)) {
    held.set(path, held.get(path)! + 1);
    try { return await fn(); } finally { held.set(path, held.get(path)! - 1); }
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = 0;
      try { owner = Number(readFileSync(path, 'utf8')); } catch { continue; }
      // an empty file is a lock being written this instant; a dead owner's lock is stale
      if (owner > 0 && !processAlive(owner)) { rmSync(path, { force: true }); continue; }
      if (Date.now() > deadline) throw new HullError(`timed out waiting for the network lock ${path} held by process ${owner}`);
      await new Promise((r) => setTimeout(r, 15));
    }
  }
  held.set(path, 1);
  try {
    return await fn();
  } finally {
    held.delete(path);
    rmSync(path, { force: true });
  }
}
