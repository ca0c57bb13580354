/**
 * The journal of volume operations in progress (`<root>/storage/journal/<id>.json`), so that a hull killed in the
 * middle of one (kill -9, a host crash) leaves the volume as it was before or after, never half:
 *
 *   - work happens in scratch paths on the pool's filesystem (`temps`), which the journal names before they exist;
 *   - the step that makes the result visible is a rename; when there are more than one (a restore swaps the old
 *     data out and the new in), the entry first records them as `finish`, and recovery completes them;
 *   - recovery (`recoverJournal`, run before any volume operation) takes the entries of processes that are gone:
 *     it performs `finish` (renames whose source is still there, files whose content is recorded) and removes the
 *     `temps` — a roll-back when `finish` was not reached, a clean-up after it.
 *
 * HULL_STORAGE_FAULT=STEP kills the process at a named step (`fault`): the crash tests' hook.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hullEnv } from '../common/env.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { processStartTime, sameProcessAlive } from '../host/proc.js';
import { storagePaths } from './pools.js';

export interface JournalEntry {
  id: string;
  op: string;
  pid: number;
  start: string | null;
  /** the pool whose driver removes the temps */
  pool: string;
  /** scratch paths: removed on recovery (after `finish`, when it is set) */
  temps: string[];
  /** renames that complete the operation once recorded: done on recovery when the source is still there */
  finish?: { from: string; to: string }[];
  /** files to write on recovery when they are missing (a volume's record) */
  files?: { path: string; content: string }[];
}

export class Journal {
  private readonly dir: string;
  constructor(root: string) {
    this.dir = storagePaths(root).journal;
  }

  begin(op: string, pool: string, temps: string[]): JournalEntry {
    const e: JournalEntry = {
      id: `${op}-${randomBytes(6).toString('hex')}`,
      op,
      pid: process.pid,
      start: processStartTime(process.pid),
      pool,
      temps,
    };
    this.save(e);
    return e;
  }

  save(e: JournalEntry): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dir, `${e.id}.json`), JSON.stringify(e) + '\n', 0o600);
  }

  end(e: JournalEntry): void {
    rmSync(join(this.dir, `${e.id}.json`), { force: true });
  }

  /** Entries whose process is gone: left by a crash. */
  abandoned(): JournalEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      try {
        const e = JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as JournalEntry;
        return sameProcessAlive(e.pid, e.start) ? [] : [e];
      } catch {
        return [];
      }
    });
  }

  /**
   * Finish or roll back what crashed processes left. `ready(pool)` mounts the entry's pool (false: the pool is
   * gone); `removeTemp(pool, path)` removes one scratch path the way the pool's driver must (a btrfs subvolume is
   * deleted, not unlinked).
   */
  recover(removeTemp: (pool: string, path: string) => void, ready: (pool: string) => boolean): JournalEntry[] {
    const done: JournalEntry[] = [];
    for (const e of this.abandoned()) {
      try {
        // the pool mounted first (after a host restart its paths are not there until then); a pool that is
        // gone took its paths with it
        if (ready(e.pool)) this.recoverOne(e, removeTemp);
        else this.end(e);
        done.push(e);
      } catch {
        // kept for the next try (a pool that cannot be mounted now); the volume commands themselves go on
      }
    }
    return done;
  }

  private recoverOne(e: JournalEntry, removeTemp: (pool: string, path: string) => void): void {
    for (const f of e.finish ?? []) {
      if (existsSync(f.from) && !existsSync(f.to)) {
        mkdirSync(dirname(f.to), { recursive: true });
        renameSync(f.from, f.to);
      }
    }
    for (const f of e.files ?? []) {
      if (!existsSync(f.path)) {
        mkdirSync(dirname(f.path), { recursive: true });
        writeFileAtomic(f.path, f.content, 0o644);
      }
    }
    for (const t of e.temps) {
      let st;
      try {
        st = statSync(t);
      } catch {
        continue;
      }
      if (st.isDirectory()) removeTemp(e.pool, t);
      else rmSync(t, { force: true });
    }
    this.end(e);
  }
}

/** The crash tests' hook: SIGKILL this process when HULL_STORAGE_FAULT names this step. */
export function fault(step: string): void {
  if (hullEnv('HULL_STORAGE_FAULT') === step) process.kill(process.pid, 'SIGKILL');
}
