/**
 * A space reserve for a hull root: a file of preallocated (written, not sparse) blocks, `<root>/space-reserve`,
 * kept while the root's file system has room, and given back to the file system when it is full so that the
 * commands that free space (rm, stop, kill, exec, ps, inspect, the prunes, rmi) can still record what they do:
 * SQLite's WAL and shared-memory file, exit files, index rewrites and events all need a few new blocks.
 *
 * Why a reserve rather than only read-only fall-backs: SQLite's -shm file is mapped into memory and re-extended
 * by every first opener; on a file system with blocks smaller than a page (ext4 under 512 MiB uses 1 KiB
 * blocks) its pages have holes that are only allocated when first touched, and on a full disk that touch is a
 * SIGBUS that kills hull before any error can be handled. Releasing the reserve before the store opens keeps
 * every such allocation satisfiable.
 *
 * Who may release it is the caller's policy: commands that add things (run, build, pull…) never do, so a full
 * disk they cause cannot also take away the room removal needs.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { hullEnv } from '../common/env.js';
import { rootPaths } from '../common/paths.js';
import { freeBytes } from './fserror.js';

/** Default size: enough for the store's WAL and -shm, exit files and a few index rewrites. */
export const DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024;

export const RESERVE_FILE = 'space-reserve';

/** What opening the state store and a small transaction may need: SQLite's 32 KiB -shm and some WAL frames. */
const PROBE_BYTES = 128 * 1024;

/** The reserve size: $HULL_SPACE_RESERVE (bytes, 0 turns the reserve off) or the default. */
export function reserveBytes(): number {
  const v = hullEnv('HULL_SPACE_RESERVE');
  if (v === undefined) return DEFAULT_RESERVE_BYTES;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_RESERVE_BYTES;
}

export class SpaceReserve {
  readonly path: string;

  constructor(
    readonly root: string,
    readonly size: number = reserveBytes(),
  ) {
    this.path = rootPaths(root).spaceReserve;
  }

  get present(): boolean {
    return existsSync(this.path);
  }

  /** Whether the root's file system is nearly full: less free than the reserve itself. */
  low(): boolean {
    const free = freeBytes(this.root);
    return free !== undefined && free < Math.max(this.size, 1024 * 1024);
  }

  /**
   * Whether `bytes` can really be allocated on the root's file system now: a probe file written and removed.
   * statfs alone cannot tell (root may write into ext4's reserved blocks after f_bavail reached 0, and f_bfree
   * counts blocks ext4 keeps for itself).
   */
  canAllocate(bytes: number): boolean {
    const probe = join(this.root, `.space-probe.${process.pid}`);
    let fd: number | undefined;
    try {
      fd = openSync(probe, 'w', 0o600);
      const chunk = Buffer.alloc(bytes);
      for (let done = 0; done < bytes; ) done += writeSync(fd, chunk, done, bytes - done);
      return true;
    } catch {
      return false;
    } finally {
      if (fd !== undefined)
        try {
          closeSync(fd);
        } catch {
          /* closed */
        }
      rmSync(probe, { force: true });
    }
  }

  /**
   * Before the state store opens: when the file system is so full that SQLite could not map its -shm file and
   * grow its WAL (PROBE_BYTES), give the reserve back. Returns whether it did.
   */
  releaseIfFull(): boolean {
    if (this.size === 0 || !this.present || !this.low()) return false;
    if (this.canAllocate(PROBE_BYTES)) return false;
    return this.release();
  }

  /** Give the reserve's blocks back to the file system. Returns whether anything was freed. */
  release(): boolean {
    if (this.size === 0 || !this.present) return false;
    try {
      rmSync(this.path, { force: true });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Make the reserve when it is missing and the file system has room for it and as much again; never leaves a
   * partial reserve behind. Returns whether the reserve exists afterwards.
   */
  replenish(): boolean {
    if (this.size === 0) return false;
    if (this.present) return true;
    const free = freeBytes(this.root);
    if (free === undefined || free < 2 * this.size) return false;
    const tmp = `${this.path}.${process.pid}.tmp`;
    let fd: number | undefined;
    try {
      fd = openSync(tmp, 'w', 0o600);
      // written zeros, not a sparse file or fallocate(2): blocks that are really allocated, on every file system
      const chunk = Buffer.alloc(Math.min(this.size, 1024 * 1024));
      // (ext4 and xfs account delayed allocations at write time: no fsync needed for the space to be taken)
      for (let done = 0; done < this.size; ) done += writeSync(fd, chunk, 0, Math.min(chunk.length, this.size - done));
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, this.path);
      return true;
    } catch {
      if (fd !== undefined)
        try {
          closeSync(fd);
        } catch {
          /* closed */
        }
      rmSync(tmp, { force: true });
      return false;
    }
  }
}
