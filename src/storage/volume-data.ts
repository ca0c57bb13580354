/**
 * The mechanism of snapshots and copies of a volume's data in its pool, on top of the pool driver's copy, makeDir,
 * limit and removeDir (drivers.ts): each works in a scratch path on the pool's own filesystem, named in the journal
 * (journal.ts) before it exists, and ends with a rename, so a process killed half-way leaves the data as it was
 * before or after. What to copy, and whether it may be copied now (names, records, instances using a volume,
 * events), is the engine's (engine/volume-ops.ts); nothing here knows of instances.
 *
 * Archives: exportData tars a directory (node-tar, links kept as links, never followed); archives are extracted by
 * the caller's fill (the image layer extractor's rules).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tar from 'tar';
import { PoolFullError } from '../common/errors.js';
import { runProgram } from '../host/proc.js';
import { poolDriver } from './drivers.js';
import { fault, type Journal } from './journal.js';
import { type PoolRecord, poolLayout } from './pools.js';

/** A volume's quota as its data needs it again after a copy (xfs projects are not copied with the files). */
export interface DataQuota {
  /** bytes (--size); none: no quota */
  size?: number;
  /** a block volume's disk file: its directory gets room for the file's metadata */
  block?: boolean;
  /** xfs: the project id */
  projectId?: number;
}

/** ENOSPC/EDQUOT from a host program or a write: the pool (or the volume's quota) is full. */
export function poolFullError(e: unknown, pool: PoolRecord, what: string): unknown {
  const text = `${(e as Error)?.message ?? ''} ${(e as NodeJS.ErrnoException)?.code ?? ''}`;
  // node has no name for EDQUOT (-122): it says UNKNOWN, with the number
  const errno = (e as NodeJS.ErrnoException)?.errno;
  if (errno === -122 || errno === -28 || /ENOSPC|EDQUOT|No space left|Disk quota exceeded/i.test(text))
    return new PoolFullError(
      `${what}: storage pool ${pool.name} is full (or the volume's --size is reached): free space with hull volume snapshot rm / volume rm, or use a bigger pool`,
      { cause: e },
    );
  return e;
}

/** A new scratch path on the pool's filesystem (its directory made; the path itself not). */
export function scratchPath(root: string, pool: PoolRecord, what: string): string {
  const tmp = poolLayout(root, pool).tmp;
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  return join(tmp, `${what}-${randomBytes(6).toString('hex')}`);
}

/** Apply a quota to a directory of the pool (a copy of a volume's data); nothing where the pool has no quotas. */
export function applyQuota(pool: PoolRecord, q: DataQuota, dir: string): void {
  if (q.size === undefined) return;
  const drv = poolDriver(pool.driver);
  if (drv.quotaSupport(pool) !== null) return;
  const extra = q.block ? 16 * 1024 ** 2 : 0;
  drv.limit(pool, dir, q.size + extra, q.projectId ?? 0);
}

/**
 * A read-only point-in-time copy of `src` at `dest` (its parent made): in one step where the driver can. `label`
 * names the scratch path (the volume), `what` the operation in errors.
 */
export async function snapshotData(
  root: string,
  journal: Journal,
  pool: PoolRecord,
  src: string,
  dest: string,
  label: string,
  what: string,
): Promise<void> {
  const drv = poolDriver(pool.driver);
  const tmp = scratchPath(root, pool, `snap-${label}`);
  const e = journal.begin('snapshot', pool.name, [tmp]);
  try {
    mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
    if (drv.atomicCopy(src)) await drv.copy(pool, src, dest, { readonly: true });
    else {
      await drv.copy(pool, src, tmp, { readonly: true });
      fault('snapshot:copied');
      renameSync(tmp, dest);
    }
  } catch (err) {
    if (existsSync(tmp)) drv.removeDir(pool, tmp);
    journal.end(e);
    throw poolFullError(err, pool, what);
  }
  journal.end(e);
}

/** Replace the data at `target` by a writable copy of `src` (a snapshot), with the quota `q`. */
export async function restoreData(
  root: string,
  journal: Journal,
  pool: PoolRecord,
  src: string,
  target: string,
  q: DataQuota,
  label: string,
  what: string,
): Promise<void> {
  const drv = poolDriver(pool.driver);
  const fresh = scratchPath(root, pool, `restore-${label}`);
  const old = scratchPath(root, pool, `old-${label}`);
  const e = journal.begin('restore', pool.name, [fresh, old]);
  try {
    await drv.copy(pool, src, fresh, { readonly: false });
    applyQuota(pool, q, fresh);
  } catch (err) {
    if (existsSync(fresh)) drv.removeDir(pool, fresh);
    journal.end(e);
    throw poolFullError(err, pool, what);
  }
  fault('restore:copied');
  // from here on the restore is finished by whoever comes next, should this process die
  e.finish = [
    { from: target, to: old },
    { from: fresh, to: target },
  ];
  journal.save(e);
  renameSync(target, old);
  fault('restore:swapped-out');
  renameSync(fresh, target);
  drv.removeDir(pool, old);
  journal.end(e);
}

/** Remove a snapshot (or any copy made by the driver): in one step, or moved out of sight first. */
export function removeData(
  root: string,
  journal: Journal,
  pool: PoolRecord,
  path: string,
  op: string,
  label: string,
): void {
  const drv = poolDriver(pool.driver);
  // a btrfs snapshot goes in one step (and, read-only, cannot be renamed); a copy is moved out of sight first
  if (drv.atomicCopy(path)) {
    drv.removeDir(pool, path);
    return;
  }
  const tmp = scratchPath(root, pool, `rm-${label}`);
  const e = journal.begin(op, pool.name, [tmp]);
  renameSync(path, tmp);
  drv.removeDir(pool, tmp);
  journal.end(e);
}

/**
 * New data at `dest`, filled by `fill(dir)` in a scratch directory of the pool (with the quota `q` applied after),
 * then renamed into place. `files` (a record) are written by `commit` after the rename, and by the next process's
 * recovery should this one die in between; a crash before the rename leaves nothing.
 */
export async function fillNewData(
  root: string,
  journal: Journal,
  pool: PoolRecord,
  op: string,
  dest: string,
  q: DataQuota,
  fill: (dir: string) => Promise<void>,
  files: { path: string; content: string }[],
  commit: () => void,
  label: string,
  what: string,
): Promise<void> {
  const drv = poolDriver(pool.driver);
  const tmp = scratchPath(root, pool, `${op}-${label}`);
  const e = journal.begin(op, pool.name, [tmp, `${tmp}.work`]);
  try {
    await fill(tmp);
    applyQuota(pool, q, tmp);
  } catch (err) {
    if (existsSync(tmp)) drv.removeDir(pool, tmp);
    journal.end(e);
    throw poolFullError(err, pool, what);
  }
  fault(`${op}:filled`);
  e.finish = [{ from: tmp, to: dest }];
  e.files = files;
  journal.save(e);
  mkdirSync(dirname(dest), { recursive: true, mode: 0o711 });
  for (const f of files) mkdirSync(dirname(f.path), { recursive: true, mode: 0o755 });
  renameSync(tmp, dest);
  commit();
  journal.end(e);
}

/** Copy the directory `from` (of any pool) into the new directory `dir` of `pool`: the driver's copy within one pool. */
export async function copyData(pool: PoolRecord, from: string, dir: string, samePool: boolean): Promise<void> {
  const drv = poolDriver(pool.driver);
  if (samePool) await drv.copy(pool, from, dir, { readonly: false });
  else {
    drv.makeDir(pool, dir);
    await runProgram('cp', ['-a', '--reflink=auto', '-T', from, dir]);
  }
}

/** The files of the directory `dir` as a tar at `out`, written beside it and renamed onto it. */
export async function exportData(journal: Journal, pool: PoolRecord, dir: string, out: string): Promise<void> {
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  const e = journal.begin('export', pool.name, [tmp]);
  try {
    await tar.c({ file: tmp, cwd: dir, portable: false, preservePaths: false, follow: false }, ['.']);
    fault('export:written');
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { force: true });
    journal.end(e);
    throw err;
  }
  journal.end(e);
}
