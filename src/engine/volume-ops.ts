/**
 * Snapshots and copies of volumes: `hull volume snapshot create|ls|restore|rm`, `export`, `import`, `clone`: the
 * policy (names, records, refusals while instances use a volume, events). The mechanism is the storage layer's
 * (storage/volume-data.ts, on the pool drivers): each works in a scratch path on the pool's own filesystem (so that the last step is a rename), named in the
 * journal before it exists (storage/journal.ts): a hull killed half-way leaves the volume as it was before or
 * after, and the next hull removes what was left. Snapshots are the pool driver's copies: btrfs read-only
 * snapshots (O(1)), xfs reflink copies (blocks shared), dir full copies.
 *
 * Archives: export tars the volume's files (node-tar, links kept as links, never followed); import extracts with
 * the image layer extractor's rules (image/unpack.ts: no entry reaches outside the volume, `..`, absolute paths
 * and entries under a symlink are skipped, device nodes too).
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError, StateError } from '../common/errors.js';
import { rootPaths, VOLUME_FILE } from '../common/paths.js';
import { extractArchive } from '../image/unpack.js';
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
import {
  copyData,
  type DataQuota,
  exportData,
  fillNewData,
  removeData,
  restoreData,
  snapshotData,
} from '../storage/volume-data.js';
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

function dataDir(v: VolumeRecord): string {
  return v.type === 'block' ? dirname(v.mountpoint) : v.mountpoint;
}

function quotaOf(v: VolumeRecord): DataQuota {
  return {
    ...(v.size !== undefined ? { size: v.size } : {}),
    ...(v.type === 'block' ? { block: true } : {}),
    ...(v.projectId !== undefined ? { projectId: v.projectId } : {}),
  };
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
  const dest = poolLayout(engine.root, pool).snapshot(v.name, snap);
  if (existsSync(dest)) throw new ConflictError(`volume ${v.name} already has a snapshot named ${snap}`);
  await snapshotData(engine.root, journal, pool, dataDir(v), dest, v.name, `snapshot ${snap} of volume ${v.name}`);
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
  const src = poolLayout(engine.root, pool).snapshot(v.name, snap);
  if (!existsSync(src)) throw new NotFoundError(`volume ${v.name} has no snapshot named ${snap}`);
  await restoreData(engine.root, journal, pool, src, dataDir(v), quotaOf(v), v.name, `restore of volume ${v.name}`);
  engine.store.addEvent('volume', 'restore', v.name, v.name, { snapshot: snap });
}

export function removeSnapshot(engine: Engine, volume: string, snap: string): void {
  checkStorageName('snapshot', snap);
  storageJournal(engine);
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  const path = poolLayout(engine.root, pool).snapshot(v.name, snap);
  if (!existsSync(path)) throw new NotFoundError(`volume ${v.name} has no snapshot named ${snap}`);
  removeData(engine.root, storageJournal(engine), pool, path, 'snapshot-rm', v.name);
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
  const recPath = join(rootPaths(engine.root).volumeDir(name), VOLUME_FILE);
  if (existsSync(recPath)) throw new ConflictError(`volume ${name} already exists: remove it or choose another name`);
  const pool = poolReady(getPool(engine.root, poolName));
  const drv = poolDriver(pool.driver);
  const layout = poolLayout(engine.root, pool);
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
  if (rec.size !== undefined && drv.quotaSupport(pool) === null && pool.driver === 'xfs')
    rec.projectId = nextProjectId(engine.root, pool);
  // the record is written after the data is renamed into place (and by the next hull, should this one die between)
  await fillNewData(
    engine.root,
    journal,
    pool,
    op,
    layout.volume(name),
    quotaOf(rec),
    (dir) => fill(dir, pool, rec),
    [{ path: recPath, content: recordText(rec) }],
    () => writeRecord(engine.root, rec),
    name,
    `${op} of volume ${name}`,
  );
  engine.store.addEvent('volume', 'create', name, name, { driver: 'local', pool: pool.name });
  return rec;
}

/** `volume clone SRC DST [--pool P]`: a copy of a volume (its snapshot mechanism within one pool). */
export async function cloneVolume(engine: Engine, src: string, dst: string, poolName?: string): Promise<VolumeRecord> {
  const v = inspectVolume(engine, src);
  const target = poolName ?? v.pool ?? DEFAULT_POOL;
  return fillNewVolume(engine, dst, target, v, 'clone', async (dir, pool) => {
    volumePool(engine, v);
    await copyData(pool, dataDir(v), dir, pool.name === (v.pool ?? DEFAULT_POOL));
  });
}

/** `volume export VOLUME -o FILE`: the volume's files as a tar, written beside FILE and renamed onto it. */
export async function exportVolume(engine: Engine, volume: string, file: string): Promise<void> {
  const v = inspectVolume(engine, volume);
  const pool = volumePool(engine, v);
  await exportData(storageJournal(engine), pool, dataDir(v), resolve(file));
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
