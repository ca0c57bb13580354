/**
 * The image store's downloads (pull) go through `<root>/images/.downloads/`: `<hex>.part` is the partial
 * blob (kept after a failure or an interrupt when the registry takes range requests, so the next pull
 * resumes it) and `<hex>.owner` names the process downloading it (pid, start time, a per-task token). A
 * second puller of the same blob sees a live owner and waits for the blob to arrive in blobs/; an owner
 * that died (kill -9) is taken over, partial included. Claims and commits happen under the store lock.
 * Partials are never blobs: a finished one is verified against its digest, then renamed into blobs/. GC
 * (./gc.ts) removes owner files of dead processes and partials nobody owns that are older than
 * {@link PARTIAL_MAX_AGE_MS} (all of them with `image prune --all`) through {@link Downloads.collectLocked}.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/fsutil.js';
import { processStartTime, sameProcessAlive } from '../../host/proc.js';
import { digestHex } from '../layout.js';
import type { Lease } from '../lease.js';
import type { StoreParts } from './parts.js';

/** Partials nobody downloads are kept this long for a resume, then `image prune` removes them. */
export const PARTIAL_MAX_AGE_MS = 60 * 60 * 1000;

interface DownloadOwner {
  pid: number;
  start: string;
  token: string;
}

export class Downloads {
  constructor(private readonly s: StoreParts) {}

  private get dir(): string {
    return join(this.s.imagesDir, '.downloads');
  }

  /** Where the partial download of `digest` lives (outside blobs/: never taken for a blob). */
  partialPath(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.part`);
  }

  private ownerPath(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.owner`);
  }

  /** The live owner of a download, or undefined when there is none (no file, or its process is gone). */
  private liveOwner(digest: string): DownloadOwner | undefined {
    let owner: DownloadOwner;
    try {
      owner = JSON.parse(readFileSync(this.ownerPath(digest), 'utf8')) as DownloadOwner;
    } catch {
      return undefined;
    }
    // pid and start time name the process; a zombie (killed, not reaped yet) is gone too
    return sameProcessAlive(owner.pid, owner.start) ? owner : undefined;
  }

  /**
   * Claim the download of a blob, under the store lock: 'stored' when the store has it (it is added to
   * `lease`, so no collector takes it before the pull commits), 'mine' when this task now owns the download
   * (no owner, or a dead one: its partial is this task's to resume), 'busy' while another live task owns it.
   */
  async claim(digest: string, lease: Lease, token: string): Promise<'stored' | 'mine' | 'busy'> {
    return this.s.layout.withLock(() => {
      const owner = this.liveOwner(digest);
      if (this.s.layout.hasBlob(digest)) {
        lease.add([digest]);
        if (!owner) rmSync(this.ownerPath(digest), { force: true }); // a claim its process left (killed while committing)
        return 'stored';
      }
      if (owner && owner.token !== token) return 'busy';
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const me: DownloadOwner = { pid: process.pid, start: processStartTime(process.pid) ?? '', token };
      writeFileAtomic(this.ownerPath(digest), JSON.stringify(me));
      return 'mine';
    });
  }

  /** The pid of the live process downloading `digest`, if any. */
  owner(digest: string): number | undefined {
    return this.liveOwner(digest)?.pid;
  }

  /** Without the lock: whether a claim would now end differently from 'busy' (the blob came, or its owner is gone). */
  settled(digest: string): boolean {
    return this.s.layout.hasBlob(digest) || !this.liveOwner(digest);
  }

  /** Bytes of the partial download of `digest` so far (0 when there is none). */
  partialSize(digest: string): number {
    try {
      return statSync(this.partialPath(digest)).size;
    } catch {
      return 0;
    }
  }

  /**
   * A finished download (its partial, verified against `digest` by the caller) becomes a blob, in `lease`,
   * and the claim ends; one step under the lock.
   */
  async commit(digest: string, size: number, lease: Lease, token: string): Promise<void> {
    await this.s.layout.withLock(() => {
      // the claim goes first: a kill between the two leaves an unowned, complete partial (the next pull checks and
      // commits it without fetching), never a stored blob with a claim on it
      if (this.liveOwner(digest)?.token === token) rmSync(this.ownerPath(digest), { force: true });
      this.s.layout.commitBlob({ path: this.partialPath(digest), digest, size });
      lease.add([digest]);
    });
  }

  /** End a claim without a blob, keeping the partial for a resume or removing it. */
  release(digest: string, token: string, keepPartial: boolean): void {
    if (!keepPartial) rmSync(this.partialPath(digest), { force: true });
    if (this.liveOwner(digest)?.token === token) rmSync(this.ownerPath(digest), { force: true });
  }

  /** Under the lock: drop owner files of dead processes and unowned partials older than `maxAgeMs`. Returns bytes freed. */
  collectLocked(maxAgeMs: number): number {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let freed = 0;
    const now = Date.now();
    for (const name of names) {
      const m = /^([a-f0-9]{64})\.(part|owner)$/.exec(name);
      if (!m) continue;
      const digest = `sha256:${m[1]}`;
      if (this.liveOwner(digest)) continue;
      const path = join(this.dir, name);
      if (m[2] === 'owner') {
        rmSync(path, { force: true });
        continue;
      }
      try {
        const st = statSync(path);
        if (now - st.mtimeMs < maxAgeMs) continue;
        rmSync(path, { force: true });
        freed += st.size;
      } catch {
        /* gone meanwhile */
      }
    }
    return freed;
  }
}
