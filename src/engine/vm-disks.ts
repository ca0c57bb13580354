/**
 * VMs' root disks in storage pools (the policy; the VM driver makes the disk file, src/vm/disk.ts). At create the
 * engine places a VM's writable root disk in a pool (--pool, default `default`): `<pool>/vm-disks/<id>.<format>`
 * (`volumes/.vm-disks/` in the default pool), recorded in the instance's config as vm.rootDisk. The driver fills it
 * at its first start: an image VM's qcow2 overlay over the image's cached ext4 disk, or a full OS disk's imported
 * copy (`hull vm create --disk`: copied, reflinked where the pool's filesystem can). The engine mounts the pool before
 * each start and removes the disk with its instance; a pool that holds VM disks cannot be removed.
 *
 * --disk-in-place (full OS disks only) boots the user's file itself, as virt-install --import does: no copy, the
 * guest writes to it, and rm leaves it.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import type { InstanceConfig, VmOptions } from '../common/instance.js';
import { DEFAULT_POOL, getPool, listPools, poolLayout, poolReady } from '../storage/pools.js';
import type { Engine } from './engine.js';

/** The smallest --disk-size: a root filesystem of less is no use. */
const MIN_DISK = 64 * 1024 * 1024;

/** Check --pool, --disk-size and --disk-in-place (the pool exists); nothing is made. */
export function checkRootDisk(engine: Engine, vm: VmOptions | undefined): void {
  if (!vm) return;
  if (vm.diskSize !== undefined && vm.diskSize < MIN_DISK)
    throw new InvalidArgumentError(`--disk-size ${vm.diskSize} is too small for a root disk: give at least 64m`);
  if (vm.diskInPlace) {
    if (!vm.disk) throw new InvalidArgumentError('--disk-in-place is for hull vm create --disk');
    if (vm.pool !== undefined)
      throw new InvalidArgumentError(
        '--disk-in-place boots your file where it is: drop --pool, or drop --disk-in-place',
      );
    if (vm.diskSize !== undefined)
      throw new InvalidArgumentError(
        '--disk-in-place would resize your own file: resize it yourself (qemu-img resize FILE SIZE), or drop --disk-in-place',
      );
    return;
  }
  getPool(engine.root, vm.pool ?? DEFAULT_POOL);
}

/** Place a new VM's root disk (config.vm: pool, rootDisk) after checkRootDisk's checks. */
export function placeRootDisk(engine: Engine, config: InstanceConfig, id: string): void {
  const vm = config.vm;
  checkRootDisk(engine, vm);
  if (!vm || vm.diskInPlace) return;
  const pool = poolReady(getPool(engine.root, vm.pool ?? DEFAULT_POOL));
  const dir = poolLayout(engine.root, pool).vmDisks;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  vm.pool = pool.name;
  vm.rootDisk = join(dir, `${id}.${vm.disk ? (vm.diskFormat ?? 'qcow2') : 'qcow2'}`);
}

/** Mount the pool of a VM's root disk (after a host restart) before the VM starts or its disk is removed. */
export function rootDiskReady(engine: Engine, config: InstanceConfig): void {
  if (config.vm?.rootDisk && config.vm.pool) poolReady(getPool(engine.root, config.vm.pool));
}

/** Remove a VM's root disk from its pool (rm, or a create that failed); the user's own file (in place) is kept. */
export function removeRootDisk(engine: Engine, config: InstanceConfig): void {
  const path = config.vm?.rootDisk;
  if (!path || !config.vm?.pool) return;
  try {
    rootDiskReady(engine, config);
  } catch {
    /* the pool is gone or cannot be mounted: nothing of it to remove */
  }
  rmSync(path, { force: true });
  rmSync(`${path}.tmp`, { force: true });
}

/**
 * Remove the root disks an instance without a record may have left in any pool (`hull system recover` of an
 * instance whose saved record is gone: the disk's path was in that record, its name is the instance's id).
 * Returns what could not be removed.
 */
export function removeOrphanRootDisks(engine: Engine, id: string): string[] {
  const problems: string[] = [];
  for (const pool of listPools(engine.root)) {
    let dir: string;
    try {
      dir = poolLayout(engine.root, poolReady(pool)).vmDisks;
    } catch {
      continue; // a pool that cannot be mounted holds nothing we can reach
    }
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.filter((f) => f.startsWith(`${id}.`)))
      try {
        rmSync(join(dir, n), { force: true });
      } catch (e) {
        problems.push(`cannot remove ${join(dir, n)}: ${(e as Error).message}`);
      }
  }
  return problems;
}

export interface PoolVmDisk {
  instance: string;
  id: string;
  path: string;
  /** bytes the disk file takes in the pool (allocated blocks) */
  bytes: number;
}

/** The VM root disks in a pool (for `storage pool inspect` and `rm`). */
export function poolVmDisks(engine: Engine, pool: string): PoolVmDisk[] {
  return engine.store
    .list()
    .filter((r) => r.config.vm?.rootDisk && r.config.vm.pool === pool)
    .map((r) => {
      const path = r.config.vm!.rootDisk!;
      let bytes = 0;
      try {
        bytes = statSync(path).blocks * 512;
      } catch {
        /* not made yet (the VM has not started), or its pool is not mounted */
      }
      return { instance: r.name, id: r.id, path, bytes };
    });
}
