/**
 * Storage pools: where volumes live. A pool is a record (`<root>/storage/pools/<name>.json`) naming its driver
 * (drivers.ts) and where its filesystem comes from:
 *
 *   - nothing: a loop-backed image file under the root (`storage/images/<name>.img`, `--size`, sparse), mounted at
 *     `storage/mnt/<name>`;
 *   - --source DEVICE (a block device) or FILE (an image file): that, formatted when the pool is made, mounted there;
 *   - --source DIR: an existing directory (dir driver), or a mounted btrfs/xfs filesystem, used as it is.
 *
 * The `default` pool (dir driver) always exists and is not recorded: its volumes are the root's `volumes/<name>/_data`
 * directories, which is where hull kept volumes before pools (old roots work unchanged).
 *
 * Mounts do not survive a host restart: every use of a pool (`poolReady`) mounts it again when it is not mounted
 * (mount -o loop sets the loop device to clear itself on umount, so removing a pool leaves no loop device behind).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, HostCommandError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { rootPaths } from '../common/paths.js';
import { isMountpoint, readMountInfo } from '../host/mount.js';
import { runProgram, runProgramSync } from '../host/proc.js';
import { type PoolDriver, type PoolDriverName, type PoolInfo, poolDriver } from './drivers.js';

export const DEFAULT_POOL = 'default';
/** Pool, volume and snapshot names: docker's volume-name rule, so that no name is a path (`..`, `/`). */
export const STORAGE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export interface PoolRecord extends PoolInfo {
  driver: PoolDriverName;
  /** --source as given (device, image file or directory); absent for a loop image under the root */
  source?: string;
  /** the image file a loop mount is made from (ours under the root, or --source FILE) */
  image?: string;
  /** the device mounted (--source DEVICE) */
  device?: string;
  /** bytes asked for with --size (the image's size) */
  size?: number;
  createdAt: string;
  /** xfs: the next project id to hand to a volume with a quota */
  nextProjectId?: number;
}

export function checkStorageName(what: string, name: string): void {
  if (!STORAGE_NAME.test(name))
    throw new InvalidArgumentError(
      `invalid ${what} name "${name}": use letters, digits, _ . - (two to 128, starting with a letter or digit)`,
    );
}

export function storagePaths(root: string) {
  const base = rootPaths(root).storage;
  return {
    base,
    pools: join(base, 'pools'),
    record: (name: string) => join(base, 'pools', `${name}.json`),
    mnt: (name: string) => join(base, 'mnt', name),
    image: (name: string) => join(base, 'images', `${name}.img`),
    journal: join(base, 'journal'),
  };
}

/** Where a pool keeps a volume's data, its snapshots, and scratch space on the same filesystem. */
export interface PoolLayout {
  volume(name: string): string;
  snapshots(volume: string): string;
  snapshot(volume: string, snap: string): string;
  tmp: string;
  /** VMs' root disks (one file per instance, named by its id; not volumes: no volume name starts with a dot) */
  vmDisks: string;
}

export function poolLayout(root: string, pool: PoolRecord): PoolLayout {
  if (pool.name === DEFAULT_POOL) {
    const vols = rootPaths(root).volumes;
    return {
      volume: (n) => join(vols, n, '_data'),
      snapshots: (n) => join(vols, n, 'snapshots'),
      snapshot: (n, s) => join(vols, n, 'snapshots', s),
      tmp: join(vols, '.tmp'),
      vmDisks: join(vols, '.vm-disks'),
    };
  }
  return {
    volume: (n) => join(pool.path, 'volumes', n),
    snapshots: (n) => join(pool.path, 'snapshots', n),
    snapshot: (n, s) => join(pool.path, 'snapshots', n, s),
    tmp: join(pool.path, '.tmp'),
    vmDisks: join(pool.path, 'vm-disks'),
  };
}

function defaultPool(root: string): PoolRecord {
  return { name: DEFAULT_POOL, driver: 'dir', path: rootPaths(root).volumes, createdAt: '' };
}

function readPool(root: string, name: string): PoolRecord | undefined {
  if (name === DEFAULT_POOL) return defaultPool(root);
  if (!STORAGE_NAME.test(name)) return undefined;
  try {
    return JSON.parse(readFileSync(storagePaths(root).record(name), 'utf8')) as PoolRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function getPool(root: string, name: string): PoolRecord {
  const p = readPool(root, name);
  if (!p) throw new NotFoundError(`no such storage pool: ${name} (hull storage pool ls lists them)`);
  return p;
}

export function listPools(root: string): PoolRecord[] {
  let names: string[] = [];
  try {
    names = readdirSync(storagePaths(root).pools).filter((f) => f.endsWith('.json'));
  } catch {
    /* none made yet */
  }
  const pools = names.flatMap((f) => {
    const p = readPool(root, f.slice(0, -5));
    return p ? [p] : [];
  });
  return [defaultPool(root), ...pools.sort((a, b) => a.name.localeCompare(b.name))];
}

function savePool(root: string, pool: PoolRecord): void {
  mkdirSync(storagePaths(root).pools, { recursive: true, mode: 0o700 });
  writeFileAtomic(storagePaths(root).record(pool.name), JSON.stringify(pool, null, 2) + '\n', 0o600);
}

/** Whether the pool needs a mount of its own (an image file or a device). */
function mounted(pool: PoolRecord): boolean {
  return !!(pool.image || pool.device);
}

function mountSync(pool: PoolRecord, quotas: boolean): void {
  const drv = poolDriver(pool.driver);
  const opts = [...(pool.image ? ['loop'] : []), ...drv.mountOptions(quotas)];
  mkdirSync(pool.path, { recursive: true, mode: 0o700 });
  runProgramSync('mount', [
    '-t',
    drv.fsType,
    ...(opts.length ? ['-o', opts.join(',')] : []),
    (pool.image ?? pool.device)!,
    pool.path,
  ]);
}

/**
 * Make sure the pool's filesystem is there: mount it again when it is not (after a host restart, or an umount by
 * hand). Called before every use of the pool; costs one read of mountinfo when it is mounted.
 */
export function poolReady(pool: PoolRecord): PoolRecord {
  if (!mounted(pool)) {
    if (pool.name === DEFAULT_POOL) mkdirSync(pool.path, { recursive: true, mode: 0o755 });
    return pool;
  }
  if (isMountpoint(pool.path)) return pool;
  try {
    mountSync(pool, pool.driver === 'xfs' ? pool.quotas !== false : false);
  } catch (e) {
    throw new HostCommandError(
      'mount',
      [pool.path],
      e instanceof HostCommandError ? e.status : null,
      (e as Error).message,
      `storage pool ${pool.name} cannot be mounted: check ${pool.image ?? pool.device}`,
    );
  }
  return pool;
}

function isBlockDevice(p: string): boolean {
  try {
    return statSync(p).isBlockDevice();
  } catch {
    return false;
  }
}

/** `hull storage pool create`: make (format, mount) a pool; nothing is left of it when this fails. */
export async function createPool(
  root: string,
  opts: { name: string; driver: string; source?: string; size?: number },
): Promise<PoolRecord> {
  checkStorageName('storage pool', opts.name);
  if (opts.name === DEFAULT_POOL || readPool(root, opts.name))
    throw new ConflictError(`storage pool ${opts.name} already exists`);
  const drv: PoolDriver = poolDriver(opts.driver);
  const sp = storagePaths(root);
  // what a create cut short left (a mount, an image file, no record): ours to take back
  if (isMountpoint(sp.mnt(opts.name))) await runProgram('umount', [sp.mnt(opts.name)]);
  rmSync(sp.image(opts.name), { force: true });
  const pool: PoolRecord = {
    name: opts.name,
    driver: drv.name,
    path: sp.mnt(opts.name),
    createdAt: new Date().toISOString(),
  };
  let source = opts.source;
  if (source !== undefined) {
    if (!source.startsWith('/')) throw new InvalidArgumentError(`--source ${source}: give an absolute path`);
    if (!existsSync(source)) throw new NotFoundError(`--source ${source} does not exist`);
    source = source.replace(/\/+$/, '') || '/';
    pool.source = source;
  }
  if (drv.name === 'dir') {
    if (opts.size !== undefined)
      throw new InvalidArgumentError(
        'the dir driver has no quotas or size: drop --size, or use --driver btrfs or xfs for a pool of a set size',
      );
    if (source === undefined) {
      mkdirSync(pool.path, { recursive: true, mode: 0o711 });
    } else {
      if (!statSync(source).isDirectory())
        throw new InvalidArgumentError(`--source ${source} is not a directory: the dir driver keeps volumes in one`);
      pool.path = source;
    }
    savePool(root, pool);
    return pool;
  }
  // btrfs / xfs
  let madeImage = false;
  if (source === undefined) {
    const size = opts.size ?? 1024 ** 3;
    const min = drv.name === 'xfs' ? 300 * 1024 ** 2 : 128 * 1024 ** 2;
    if (size < min)
      throw new InvalidArgumentError(`--size ${size}: a ${drv.name} pool needs at least ${min / 1024 ** 2} MiB`);
    pool.image = sp.image(opts.name);
    pool.size = size;
  } else if (isBlockDevice(source)) {
    if (opts.size !== undefined)
      throw new InvalidArgumentError("--size is the device's own with --source DEVICE: drop it");
    pool.device = source;
  } else if (statSync(source).isDirectory()) {
    if (opts.size !== undefined)
      throw new InvalidArgumentError('--size cannot be set on an existing filesystem: drop it');
    const fs = readMountInfo().filter(
      (m) => source === m.mountPoint || source!.startsWith(m.mountPoint === '/' ? '/' : m.mountPoint + '/'),
    );
    const fsType = fs.sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0]?.fsType;
    if (fsType !== drv.fsType)
      throw new InvalidArgumentError(
        `--source ${source} is on ${fsType ?? 'an unknown filesystem'}, not ${drv.fsType}`,
      );
    pool.path = source;
  } else {
    pool.image = source;
    if (opts.size !== undefined) pool.size = opts.size;
  }
  const undo = async (): Promise<void> => {
    if (mounted(pool) && isMountpoint(pool.path)) await runProgram('umount', [pool.path], { allowFailure: true });
    if (pool.path === sp.mnt(opts.name)) rmSync(pool.path, { recursive: true, force: true });
    if (madeImage) rmSync(pool.image!, { force: true });
  };
  try {
    if (pool.image === sp.image(opts.name)) {
      mkdirSync(join(sp.base, 'images'), { recursive: true, mode: 0o700 });
      await runProgram('truncate', ['-s', String(pool.size), pool.image]);
      madeImage = true;
    } else if (pool.image && opts.size !== undefined) {
      await runProgram('truncate', ['-s', String(opts.size), pool.image]);
    }
    if (mounted(pool)) {
      await drv.format((pool.image ?? pool.device)!);
      if (drv.name === 'xfs') {
        // project quotas need the kernel's XFS quota support; without it the pool works, with no --size for volumes
        try {
          mountSync(pool, true);
          pool.quotas = true;
        } catch {
          mountSync(pool, false);
          pool.quotas = false;
        }
      } else mountSync(pool, false);
    } else if (drv.name === 'xfs') {
      pool.quotas = readMountInfo().some(
        (m) => m.mountPoint === pool.path && m.superOptions.some((o) => /^(prjquota|pquota)$/.test(o)),
      );
    }
    await drv.init(pool);
    if (drv.name === 'xfs') pool.nextProjectId = 1000;
    savePool(root, pool);
  } catch (e) {
    await undo();
    throw e;
  }
  return pool;
}

/** Space of a pool's filesystem in bytes. */
export function poolSpace(pool: PoolRecord): { size: number; used: number; free: number } {
  poolReady(pool);
  const s = statfsSync(pool.path);
  return { size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, free: s.bavail * s.bsize };
}

/** Hand out the next XFS project id of a pool (recorded before it is used). */
export function nextProjectId(root: string, pool: PoolRecord): number {
  const cur = getPool(root, pool.name);
  const id = cur.nextProjectId ?? 1000;
  cur.nextProjectId = id + 1;
  savePool(root, cur);
  return id;
}

/** `hull storage pool rm`: unmount and remove a pool that holds no volumes (the caller checked). */
export async function removePool(root: string, pool: PoolRecord): Promise<void> {
  const sp = storagePaths(root);
  if (mounted(pool) && isMountpoint(pool.path)) await runProgram('umount', [pool.path]);
  // the record first: a pool without its record is gone for hull, whatever is left on disk is ours to delete
  unlinkSync(sp.record(pool.name));
  if (pool.path === sp.mnt(pool.name)) rmSync(pool.path, { recursive: true, force: true });
  if (pool.image === sp.image(pool.name)) rmSync(pool.image, { force: true });
}

export type { PoolDriverName } from './drivers.js';
export { POOL_DRIVERS, poolDriver } from './drivers.js';
