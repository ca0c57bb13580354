/**
 * Leases: what an operation in progress (a build) holds on to, so that garbage collection running
 * at the same time in another hull process (`hull image prune`, `hull rmi`) leaves it alone.
 * containerd has the same idea; hull keeps one small JSON file per lease:
 *
 *     <root>/images/.leases/<pid>-<random>.json   {"pid", "start", "refs": [digests and diffIDs]}
 *
 * A lease file names its process by pid and start time, so a lease of a process that died (a crash,
 * kill -9) is recognized as stale and ignored, and the collector deletes it. Refs are added under the
 * store lock (ImageStore.retain), which is what makes a collector that holds the same lock see either
 * the ref or a store without the thing referenced, never a half state.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/fsutil.js';
import { processStartTime, sameProcessAlive } from '../host/proc.js';

interface LeaseFile {
  pid: number;
  start: string;
  refs: string[];
}

export class Lease {
  readonly path: string;
  private readonly refs = new Set<string>();
  private released = false;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
    this.write();
  }

  has(ref: string): boolean {
    return this.refs.has(ref);
  }

  /** Add refs (blob digests, diffIDs). Called by the store under its lock. */
  add(refs: Iterable<string>): void {
    if (this.released) throw new Error('lease used after release (a bug in hull)');
    let changed = false;
    for (const r of refs) {
      if (!this.refs.has(r)) {
        this.refs.add(r);
        changed = true;
      }
    }
    if (changed) this.write();
  }

  release(): void {
    this.released = true;
    rmSync(this.path, { force: true });
  }

  private write(): void {
    const body: LeaseFile = { pid: process.pid, start: processStartTime(process.pid) ?? '', refs: [...this.refs] };
    // not durable: a lease names a live process, and after a crash of the machine no process of it lives
    writeFileAtomic(this.path, JSON.stringify(body), 0o644, false);
  }
}

/** Every ref held by a live lease in `dir`; lease files of processes that are gone are deleted. */
export function liveLeaseRefs(dir: string): Set<string> {
  const out = new Set<string>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const path = join(dir, name);
    let lease: LeaseFile;
    try {
      lease = JSON.parse(readFileSync(path, 'utf8')) as LeaseFile;
    } catch {
      continue; // being written (atomic rename pending) or unreadable: the owner will rewrite it
    }
    if (!sameProcessAlive(lease.pid, lease.start)) {
      rmSync(path, { force: true });
      continue;
    }
    for (const r of lease.refs) out.add(r);
  }
  return out;
}
