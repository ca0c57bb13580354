/**
 * Snapshots and copies of volumes: `hull volume snapshot create|ls|restore|rm`, `export`, `import`, `clone`.
 *
 * Each works in a scratch path on the pool's own filesystem (so that the last step is a rename), named in the
 * journal before it exists (storage/journal.ts): a hull killed half-way leaves the volume as it was before or
 * after, and the next hull removes what was left. Snapshots are the pool driver's copies: btrfs read-only
 * snapshots (O(1)), xfs reflink copies (blocks shared), dir full copies.
 *
 * Archives: export tars the volume's files (node-tar, links kept as links, never followed); import extracts with
 * the image layer extractor's rules (image/unpack.ts: no entry reaches outside the volume, `..`, absolute paths
 * and entries under a symlink are skipped, device nodes too).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tar from 'tar';
import { ConflictError, InvalidArgumentError, NotFoundError, PoolFullError, StateError } from '../common/errors.js';
import { rootPaths, VOLUME_FILE } from '../common/paths.js';
import { extractArchive } from '../image/unpack.js';
import { runProgram } from '../host/proc.js';
import { fault } from '../storage/journal.js';
import {
  checkStorageName,
  DEFAULT_POOL,
  getPool,
  type PoolRecord,
  poolDriver,
  poolLayout,
  poolReady,
  nextProjectId,
} from '../storage/pools.js';
import type { Engine } from './engine.js';
import {
  inspectVolume,
  recordText,
  snapshotNames,
  storageJournal,
  type VolumeRecord,
  volumePool,
  volumeUsers,
  writeRecord,
} from './volumes.js';

/** ENOSPC/EDQUOT from a host program or a write: the pool (or the volume's quota) is full. */
function fullError(e: unknown, pool: PoolRecord, what: string): unknown {
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

function dataDir(v: VolumeRecord): string {
  return v.type === 'block' ? dirname(v.mountpoint) : v.mountpoint;
}

function scratch(pool: PoolRecord, engine: Engine, what: string): string {
  const tmp = poolLayout(engine.root, pool).tmp;
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  return join(tmp, `${what}-${randomBytes(6).toString('hex')}`);
}

/** Re-apply a volume's quota to a copy of its data (xfs projects are not copied with the files). */
function requota(pool: PoolRecord, v: VolumeRecord, dir: string): void {
  if (v.size === undefined) return;
  const drv = poolDriver(pool.driver);
  if (drv.quotaSupport(pool) !== null) return;
  const extra = v.type === 'block' ? 16 * 1024 ** 2 : 0;
  drv.limit(pool, dir, v.size + extra, v.projectId ?? 0);
}

export function listSnapshots(engine: Engine, volume: string): { name: string; createdAt: string }[] {
  storageJournal(engine);
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  const layout = poolLayout(engine.root, pool);
  return snapshotNames(engine, v).map((s) => {
    // a snapshot keeps its volume's times: its own creation is the inode's birth (btrfs otime), else its ctime
    const st = statSync(layout.snapshot(v.name, s));
    return { name: s, createdAt: (st.birthtimeMs > 0 ? st.birthtime : st.ctime).toISOString() };
  });
}

/** `volume snapshot create VOLUME NAME`: a point-in-time copy, read-only where the driver can make one. */
export async function createSnapshot(engine: Engine, volume: string, snap: string): Promise<{ note?: string }> {
  checkStorageName('snapshot', snap);
  const journal = storageJournal(engine);
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  const drv = poolDriver(pool.driver);
  const layout = poolLayout(engine.root, pool);
  const dest = layout.snapshot(v.name, snap);
  if (existsSync(dest)) throw new ConflictError(`volume ${v.name} already has a snapshot named ${snap}`);
  const tmp = scratch(pool, engine, `snap-${v.name}`);
  const e = journal.begin('snapshot', pool.name, [tmp]);
  try {
    mkdirSync(layout.snapshots(v.name), { recursive: true, mode: 0o700 });
    if (drv.atomicCopy(dataDir(v))) await drv.copy(pool, dataDir(v), dest, { readonly: true });
    else {
      await drv.copy(pool, dataDir(v), tmp, { readonly: true });
      fault('snapshot:copied');
      renameSync(tmp, dest);
    }
  } catch (err) {
    if (existsSync(tmp)) drv.removeDir(pool, tmp);
    journal.end(e);
    throw fullError(err, pool, `snapshot ${snap} of volume ${v.name}`);
  }
  journal.end(e);
  engine.store.addEvent('volume', 'snapshot', v.name, v.name, { snapshot: snap });
  return pool.driver === 'dir'
    ? { note: `pool ${pool.name} uses the dir driver: the snapshot is a full copy (btrfs and xfs pools share blocks)` }
    : {};
}

function runningUsers(engine: Engine, name: string): string[] {
  return volumeUsers(engine, name)
    .filter((r) => r.state === 'running' || r.state === 'paused')
    .map((r) => r.name);
}

/** `volume snapshot restore VOLUME NAME`: the volume's data becomes the snapshot's (refused while it is mounted). */
export async function restoreSnapshot(engine: Engine, volume: string, snap: string): Promise<void> {
  checkStorageName('snapshot', snap);
  const journal = storageJournal(engine);
  const v = inspectVolume(engine, volume);
  const users = runningUsers(engine, v.name);
  if (users.length)
    throw new StateError(
      `volume ${v.name} is mounted by running ${users.join(', ')}: stop ${users.length > 1 ? 'them' : 'it'} before restoring a snapshot`,
    );
  const pool = volumePool(engine, v);
  const drv = poolDriver(pool.driver);
  const layout = poolLayout(engine.root, pool);
  const src = layout.snapshot(v.name, snap);
  if (!existsSync(src)) throw new NotFoundError(`volume ${v.name} has no snapshot named ${snap}`);
  const fresh = scratch(pool, engine, `restore-${v.name}`);
  const old = scratch(pool, engine, `old-${v.name}`);
  const e = journal.begin('restore', pool.name, [fresh, old]);
  try {
    await drv.copy(pool, src, fresh, { readonly: false });
    requota(pool, v, fresh);
  } catch (err) {
    if (existsSync(fresh)) drv.removeDir(pool, fresh);
    journal.end(e);
    throw fullError(err, pool, `restore of volume ${v.name}`);
  }
  fault('restore:copied');
  // from here on the restore is finished by whoever comes next, should this process die
  e.finish = [
    { from: dataDir(v), to: old },
    { from: fresh, to: dataDir(v) },
  ];
  journal.save(e);
  renameSync(dataDir(v), old);
  fault('restore:swapped-out');
  renameSync(fresh, dataDir(v));
  drv.removeDir(pool, old);
  journal.end(e);
  engine.store.addEvent('volume', 'restore', v.name, v.name, { snapshot: snap });
}

export function removeSnapshot(engine: Engine, volume: string, snap: string): void {
  checkStorageName('snapshot', snap);
  storageJournal(engine);
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  const path = poolLayout(engine.root, pool).snapshot(v.name, snap);
  if (!existsSync(path)) throw new NotFoundError(`volume ${v.name} has no snapshot named ${snap}`);
  const drv = poolDriver(pool.driver);
  // a btrfs snapshot goes in one step (and, read-only, cannot be renamed); a copy is moved out of sight first
  if (drv.atomicCopy(path)) {
    drv.removeDir(pool, path);
    return;
  }
  const tmp = scratch(pool, engine, `rmsnap-${v.name}`);
  const journal = storageJournal(engine);
  const e = journal.begin('snapshot-rm', pool.name, [tmp]);
  renameSync(path, tmp);
  drv.removeDir(pool, tmp);
  journal.end(e);
}

/**
 * Make a new volume NAME whose data is filled by `fill(dir)` in a scratch directory of the pool, then renamed into
 * place with its record (import, clone). A crash before the rename leaves no volume; after it, the next hull writes
 * the record that is missing.
 */
async function fillNewVolume(
  engine: Engine,
  name: string,
  poolName: string,
  base: Partial<VolumeRecord>,
  op: string,
  fill: (dir: string, pool: PoolRecord, rec: VolumeRecord) => Promise<void>,
): Promise<VolumeRecord> {
  checkStorageName('volume', name);
  const journal = storageJournal(engine);
  if (existsSync(join(rootPaths(engine.root).volumeDir(name), VOLUME_FILE)))
    throw new ConflictError(`volume ${name} already exists: remove it or choose another name`);
  const pool = poolReady(getPool(engine.root, poolName));
  const drv = poolDriver(pool.driver);
  const layout = poolLayout(engine.root, pool);
  const tmp = scratch(pool, engine, `${op}-${name}`);
  const e = journal.begin(op, pool.name, [tmp, `${tmp}.work`]);
  const rec: VolumeRecord = {
    name,
    driver: 'local',
    mountpoint: layout.volume(name),
    createdAt: new Date().toISOString(),
    labels: base.labels ?? {},
    anonymous: false,
    pool: pool.name,
    type: base.type ?? 'filesystem',
    ...(base.size !== undefined ? { size: base.size } : {}),
  };
  if (rec.type === 'block') rec.mountpoint = join(layout.volume(name), basename(base.mountpoint!));
  try {
    if (rec.size !== undefined && drv.quotaSupport(pool) === null && pool.driver === 'xfs')
      rec.projectId = nextProjectId(engine.root, pool);
    await fill(tmp, pool, rec);
    if (rec.size !== undefined && drv.quotaSupport(pool) === null) requota(pool, rec, tmp);
  } catch (err) {
    if (existsSync(tmp)) drv.removeDir(pool, tmp);
    journal.end(e);
    throw fullError(err, pool, `${op} of volume ${name}`);
  }
  fault(`${op}:filled`);
  const recPath = join(rootPaths(engine.root).volumeDir(name), VOLUME_FILE);
  e.finish = [{ from: tmp, to: layout.volume(name) }];
  e.files = [{ path: recPath, content: recordText(rec) }];
  journal.save(e);
  mkdirSync(dirname(layout.volume(name)), { recursive: true, mode: 0o711 });
  mkdirSync(rootPaths(engine.root).volumeDir(name), { recursive: true, mode: 0o755 });
  renameSync(tmp, layout.volume(name));
  writeRecord(engine.root, rec);
  journal.end(e);
  engine.store.addEvent('volume', 'create', name, name, { driver: 'local', pool: pool.name });
  return rec;
}

/** `volume clone SRC DST [--pool P]`: a copy of a volume (its snapshot mechanism within one pool). */
export async function cloneVolume(engine: Engine, src: string, dst: string, poolName?: string): Promise<VolumeRecord> {
  const v = inspectVolume(engine, src);
  const target = poolName ?? v.pool ?? DEFAULT_POOL;
  return fillNewVolume(engine, dst, target, v, 'clone', async (dir, pool) => {
    const from = dataDir(v);
    volumePool(engine, v);
    if (pool.name === v.pool) await poolDriver(pool.driver).copy(pool, from, dir, { readonly: false });
    else {
      poolDriver(pool.driver).makeDir(pool, dir);
      await runProgram('cp', ['-a', '--reflink=auto', '-T', from, dir]);
    }
  });
}

/** `volume export VOLUME -o FILE`: the volume's files as a tar, written beside FILE and renamed onto it. */
export async function exportVolume(engine: Engine, volume: string, file: string): Promise<void> {
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  const out = resolve(file);
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  const journal = storageJournal(engine);
  const e = journal.begin('export', pool.name, [tmp]);
  try {
    const dir = dataDir(v);
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

/** `volume import FILE NAME [--pool P] [--size N]`: a new volume holding the archive's files. */
export async function importVolume(
  engine: Engine,
  file: string,
  name: string,
  opts: { pool?: string; size?: number; labels?: Record<string, string> } = {},
): Promise<VolumeRecord> {
  if (!existsSync(file)) throw new NotFoundError(`archive ${file} does not exist`);
  if (opts.size !== undefined) {
    const pool = getPool(engine.root, opts.pool ?? DEFAULT_POOL);
    const why = poolDriver(pool.driver).quotaSupport(poolReady(pool));
    if (why) throw new InvalidArgumentError(why);
  }
  return fillNewVolume(
    engine,
    name,
    opts.pool ?? DEFAULT_POOL,
    { ...(opts.size !== undefined ? { size: opts.size } : {}), ...(opts.labels ? { labels: opts.labels } : {}) },
    'import',
    async (dir, pool, rec) => {
      const drv = poolDriver(pool.driver);
      drv.makeDir(pool, dir);
      // the quota first, so that an archive bigger than --size fails here rather than filling the pool
      if (rec.size !== undefined) drv.limit(pool, dir, rec.size, rec.projectId ?? 0);
      const work = `${dir}.work`;
      mkdirSync(work, { mode: 0o700 });
      try {
        await extractArchive(resolve(file), dir, work);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  );
}
