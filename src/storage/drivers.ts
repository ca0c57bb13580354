/**
 * Pool drivers: one per backend, behind one interface. A driver knows how to make its filesystem (on a loop image
 * or a device), how to mount it, and how to make, copy, limit and remove a volume's directory in it:
 *
 *   dir    a plain directory (the default pool, or --source DIR): no quotas, copies with `cp -a`
 *   btrfs  a subvolume per volume, qgroup limits for --size, O(1) snapshots (`btrfs subvolume snapshot`)
 *   xfs    a directory per volume with an XFS project quota (mounted with prjquota), reflink copies (`cp --reflink`)
 *
 * Everything is a host program (btrfs-progs, xfsprogs, coreutils), run synchronously where the caller is
 * synchronous (making a volume is milliseconds) and asynchronously for copies.
 */
import { existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { HostSupportError, InvalidArgumentError } from '../common/errors.js';
import { runProgram, runProgramSync } from '../host/proc.js';

export type PoolDriverName = 'dir' | 'btrfs' | 'xfs';
export const POOL_DRIVERS: readonly PoolDriverName[] = ['dir', 'btrfs', 'xfs'];

/** What a driver needs of its pool. */
export interface PoolInfo {
  name: string;
  /** where the pool's volumes live (its mount point, or the directory itself) */
  path: string;
  /** xfs: whether the filesystem is mounted with project quotas (the kernel may lack them) */
  quotas?: boolean;
}

export interface PoolDriver {
  readonly name: PoolDriverName;
  /** the filesystem type of a mounted pool (statfs/mountinfo), '' for dir */
  readonly fsType: string;
  /** make the filesystem on an image file or a device */
  format(target: string): Promise<void>;
  /** mount options for a mount of the pool ([] for dir); `quotas`: xfs with prjquota */
  mountOptions(quotas: boolean): string[];
  /** once, after the first mount: enable quotas (btrfs) */
  init(pool: PoolInfo): Promise<void>;
  /** whether --size can be honoured in this pool */
  quotaSupport(pool: PoolInfo): string | null;
  /** make an empty volume directory at `path` (a subvolume on btrfs) */
  makeDir(pool: PoolInfo, path: string): void;
  /** limit the directory at `path` to `bytes` (projectId: xfs's project) */
  limit(pool: PoolInfo, path: string, bytes: number, projectId: number): void;
  /** copy the directory `src` to the new `dst` (a snapshot: read-only on btrfs when `readonly`) */
  copy(pool: PoolInfo, src: string, dst: string, opts: { readonly: boolean }): Promise<void>;
  /** remove a directory made by makeDir or copy (and everything in it) */
  removeDir(pool: PoolInfo, path: string): void;
  /** whether copy(src) makes its result in one step (a btrfs snapshot of a subvolume): no scratch copy needed */
  atomicCopy(src: string): boolean;
}

function run(program: string, args: string[], hint?: string): void {
  runProgramSync(program, args, hint ? { hint } : {});
}

const dir: PoolDriver = {
  name: 'dir',
  fsType: '',
  async format() {
    throw new InvalidArgumentError('the dir driver makes no filesystem: give --source DIR, or no --size');
  },
  mountOptions: () => [],
  async init() {},
  quotaSupport: (pool) =>
    `pool ${pool.name} uses the dir driver, which has no quotas: drop --size, or use a btrfs or xfs pool`,
  makeDir(_pool, path) {
    mkdirSync(path, { mode: 0o755 });
  },
  limit(pool) {
    throw new InvalidArgumentError(dir.quotaSupport(pool)!);
  },
  async copy(_pool, src, dst) {
    await runProgram('cp', ['-a', '--reflink=auto', '--no-target-directory', src, dst]);
  },
  removeDir(_pool, path) {
    rmSync(path, { recursive: true, force: true });
  },
  atomicCopy: () => false,
};

/** Whether a path is a btrfs subvolume (inode 256 on btrfs). */
function isSubvolume(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.ino === 256;
  } catch {
    return false;
  }
}

const btrfs: PoolDriver = {
  name: 'btrfs',
  fsType: 'btrfs',
  async format(target) {
    await runProgram('mkfs.btrfs', ['-q', '-f', target], { hint: 'is btrfs-progs installed?' });
  },
  mountOptions: () => [],
  async init(pool) {
    await runProgram('btrfs', ['quota', 'enable', pool.path]);
  },
  quotaSupport: () => null,
  makeDir(_pool, path) {
    run('btrfs', ['-q', 'subvolume', 'create', path]);
  },
  limit(_pool, path, bytes) {
    run('btrfs', ['qgroup', 'limit', String(bytes), path]);
  },
  async copy(_pool, src, dst, opts) {
    if (!isSubvolume(src)) {
      // a volume made before it was a subvolume (or an import's plain directory): copy it into a new one
      btrfs.makeDir(_pool, dst);
      await runProgram('cp', ['-a', '--reflink=auto', '-T', src, dst]);
      if (opts.readonly) run('btrfs', ['property', 'set', '-ts', dst, 'ro', 'true']);
      return;
    }
    await runProgram('btrfs', ['-q', 'subvolume', 'snapshot', ...(opts.readonly ? ['-r'] : []), src, dst]);
  },
  removeDir(_pool, path) {
    if (!existsSync(path)) return;
    if (!isSubvolume(path)) {
      rmSync(path, { recursive: true, force: true });
      return;
    }
    // `subvolume delete` removes it as a whole (read-only snapshots too); its qgroup stays as a stale one
    run('btrfs', ['-q', 'subvolume', 'delete', path]);
  },
  // a read-only snapshot cannot be renamed into place (its `..` would change): it is made where it belongs
  atomicCopy: (src) => isSubvolume(src),
};

const xfs: PoolDriver = {
  name: 'xfs',
  fsType: 'xfs',
  async format(target) {
    await runProgram('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', target], { hint: 'is xfsprogs installed?' });
  },
  mountOptions: (quotas) => (quotas ? ['prjquota'] : []),
  async init() {},
  quotaSupport: (pool) =>
    pool.quotas
      ? null
      : `pool ${pool.name} is mounted without project quotas (this kernel's XFS has no quota support): drop --size, or use a btrfs pool`,
  makeDir(_pool, path) {
    mkdirSync(path, { mode: 0o755 });
  },
  limit(pool, path, bytes, projectId) {
    const why = xfs.quotaSupport(pool);
    if (why) throw new HostSupportError(why);
    run('xfs_quota', ['-x', '-c', `project -s -p ${path} ${projectId}`, pool.path]);
    run('xfs_quota', ['-x', '-c', `limit -p bhard=${bytes} ${projectId}`, pool.path]);
  },
  async copy(_pool, src, dst) {
    // reflink: shares the blocks, copies only metadata (fails rather than falling back to a full copy)
    await runProgram('cp', ['-a', '--reflink=always', '-T', src, dst]);
  },
  removeDir(_pool, path) {
    rmSync(path, { recursive: true, force: true });
  },
  atomicCopy: () => false,
};

const DRIVERS: Record<PoolDriverName, PoolDriver> = { dir, btrfs, xfs };

export function poolDriver(name: string): PoolDriver {
  const d = (DRIVERS as Record<string, PoolDriver>)[name];
  if (!d) throw new InvalidArgumentError(`unknown pool driver "${name}": use ${POOL_DRIVERS.join(', ')}`);
  return d;
}
