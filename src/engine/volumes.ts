/**
 * Volumes in storage pools (storage/). A volume's record stays where hull always kept it,
 * `volumes/<name>/volume.json`, whatever its pool; its data lives in the pool (storage/pools.ts poolLayout): the
 * default pool's is `volumes/<name>/_data`, as before pools, so old roots' volumes are default-pool volumes as
 * they are (a record without `pool` is read as one).
 *
 * Named volumes are made by `volume create` or on first use (`-v NAME:/path`, `--mount type=volume,src=NAME`);
 * anonymous ones (`-v /path`, an image's VOLUME) get a random name and go with their instance on `rm -v` and
 * `--rm`. A new, empty filesystem volume is filled with what the image has at the mount path on first mount
 * (docker's copy-up; `volume-nocopy` skips it). A volume that an instance uses (running or not) cannot be removed;
 * its data outlives every instance that used it.
 *
 * --size: a quota in btrfs (qgroup) and xfs (project) pools; for a block volume (a raw disk file in the pool, for
 * VMs), the file's size. Changes that could be cut short (removal here; snapshots, import, clone in
 * volume-ops.ts) are journalled (storage/journal.ts) and finished or rolled back on the next use.
 */
import { poolVmDisks } from './vm-disks.js';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lchownSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { treeSize, writeFileAtomic } from '../common/fsutil.js';
import type { BindMount, InstanceConfig } from '../common/instance.js';
import { parseSize, VOLUME_NAME } from '../common/parse.js';
import { rootPaths, VOLUME_FILE } from '../common/paths.js';
import { LayerView } from '../image/diff.js';
import type { ImageRecord } from '../image/store.js';
import { Journal } from '../storage/journal.js';
import {
  createPool,
  DEFAULT_POOL,
  getPool,
  listPools,
  removePool,
  STORAGE_NAME,
  nextProjectId,
  type PoolRecord,
  poolDriver,
  poolLayout,
  poolReady,
} from '../storage/pools.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

export type VolumeType = 'filesystem' | 'block';

export interface VolumeRecord {
  name: string;
  driver: 'local';
  /** the directory bind-mounted into instances (a block volume: its raw disk file) */
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  anonymous: boolean;
  /** the storage pool (absent in records made before pools: the default pool) */
  pool?: string;
  /** bytes: the quota of a filesystem volume, the disk size of a block volume */
  size?: number;
  type?: VolumeType;
  /** xfs: the project that carries the volume's quota */
  projectId?: number;
}

/** The raw disk file of a block volume, inside its directory. */
export const BLOCK_FILE = 'disk.raw';

function checkName(name: string): void {
  if (!VOLUME_NAME.test(name) || name.length > 255)
    throw new InvalidArgumentError(`invalid volume name "${name}": use letters, digits, _ . - (two or more)`);
}

function normalize(r: VolumeRecord): VolumeRecord {
  return { ...r, pool: r.pool ?? DEFAULT_POOL, type: r.type ?? 'filesystem' };
}

function read(root: string, name: string): VolumeRecord | undefined {
  try {
    return normalize(
      JSON.parse(readFileSync(join(rootPaths(root).volumeDir(name), VOLUME_FILE), 'utf8')) as VolumeRecord,
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw e;
  }
}

export function recordText(rec: VolumeRecord): string {
  return JSON.stringify(rec, null, 2) + '\n';
}

export function writeRecord(root: string, rec: VolumeRecord): void {
  writeFileAtomic(join(rootPaths(root).volumeDir(rec.name), VOLUME_FILE), recordText(rec), 0o644);
}

/** The pool of a volume, mounted. */
export function volumePool(engine: Engine, v: VolumeRecord): PoolRecord {
  return poolReady(getPool(engine.root, v.pool ?? DEFAULT_POOL));
}

/** The journal of volume operations, with what crashed processes left finished or rolled back. */
export function storageJournal(engine: Engine): Journal {
  const j = new Journal(engine.root);
  if (j.abandoned().length)
    j.recover(
      (poolName, path) => {
        const pool = getPool(engine.root, poolName);
        poolDriver(pool.driver).removeDir(pool, path);
      },
      (poolName) => {
        try {
          poolReady(getPool(engine.root, poolName));
          return true;
        } catch (e) {
          if (e instanceof NotFoundError) return false;
          throw e;
        }
      },
    );
  return j;
}

export interface CreateVolumeOptions {
  name?: string;
  labels?: Record<string, string>;
  anonymous?: boolean;
  pool?: string;
  size?: number;
  type?: VolumeType;
}

/** `--opt`/DriverOpts/volume-opt (size, pool, type) as create options. */
export function volumeOptions(opts: Record<string, string>): Pick<CreateVolumeOptions, 'pool' | 'size' | 'type'> {
  const out: Pick<CreateVolumeOptions, 'pool' | 'size' | 'type'> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'size') out.size = parseSize(v, 'volume option size');
    else if (k === 'pool') out.pool = v;
    else if (k === 'type') {
      if (v !== 'filesystem' && v !== 'block')
        throw new InvalidArgumentError(`invalid volume type "${v}": use filesystem or block`);
      out.type = v;
    } else
      throw new InvalidArgumentError(`volume option "${k}" is not supported: hull's volumes take size, pool and type`);
  }
  return out;
}

/** Make a volume (a random name when none is given); an existing one of that name is returned as it is. */
export function createVolume(engine: Engine, opts: CreateVolumeOptions = {}): VolumeRecord {
  const name = opts.name || randomBytes(32).toString('hex');
  checkName(name);
  storageJournal(engine);
  const existing = read(engine.root, name);
  if (existing) return existing;
  const type = opts.type ?? 'filesystem';
  const pool = poolReady(getPool(engine.root, opts.pool ?? DEFAULT_POOL));
  const drv = poolDriver(pool.driver);
  if (opts.size !== undefined && opts.size <= 0) throw new InvalidArgumentError('--size must be more than 0');
  if (type === 'block' && opts.size === undefined)
    throw new InvalidArgumentError('a block volume needs --size (the size of its disk)');
  if (type === 'filesystem' && opts.size !== undefined) {
    const why = drv.quotaSupport(pool);
    if (why) throw new InvalidArgumentError(why);
  }
  const layout = poolLayout(engine.root, pool);
  const data = layout.volume(name);
  const recDir = rootPaths(engine.root).volumeDir(name);
  // a record-less volume directory is what a crash left half-made: made again
  if (existsSync(data)) drv.removeDir(pool, data);
  mkdirSync(recDir, { recursive: true, mode: 0o755 });
  mkdirSync(join(data, '..'), { recursive: true, mode: 0o711 });
  const rec: VolumeRecord = {
    name,
    driver: 'local',
    mountpoint: type === 'block' ? join(data, BLOCK_FILE) : data,
    createdAt: new Date().toISOString(),
    labels: opts.labels ?? {},
    anonymous: opts.anonymous ?? false,
    pool: pool.name,
    type,
    ...(opts.size !== undefined ? { size: opts.size } : {}),
  };
  try {
    drv.makeDir(pool, data);
    if (opts.size !== undefined && drv.quotaSupport(pool) === null) {
      if (pool.driver === 'xfs') rec.projectId = nextProjectId(engine.root, pool);
      // a block volume's quota leaves room for the file system's own blocks around its disk file
      drv.limit(pool, data, type === 'block' ? opts.size + 16 * 1024 ** 2 : opts.size, rec.projectId ?? 0);
    }
    if (type === 'block') {
      writeFileSync(rec.mountpoint, '', { mode: 0o600, flag: 'wx' });
      truncateSync(rec.mountpoint, opts.size);
    }
    // the record last: a volume without one is half-made and made again on the next create
    writeRecord(engine.root, rec);
  } catch (e) {
    try {
      drv.removeDir(pool, data);
    } catch {
      /* keep the first error */
    }
    rmSync(recDir, { recursive: true, force: true });
    throw e;
  }
  engine.store.addEvent('volume', 'create', name, name, { driver: 'local', pool: pool.name });
  return rec;
}

export function listVolumes(engine: Engine): VolumeRecord[] {
  storageJournal(engine);
  let names: string[];
  try {
    names = readdirSync(rootPaths(engine.root).volumes);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const r = VOLUME_NAME.test(n) ? read(engine.root, n) : undefined;
    return r ? [r] : [];
  });
}

export function inspectVolume(engine: Engine, name: string): VolumeRecord {
  storageJournal(engine);
  const r = VOLUME_NAME.test(name) ? read(engine.root, name) : undefined;
  if (!r) throw new NotFoundError(`no such volume: ${name}`);
  return r;
}

/** Bytes the volume's files take (its disk file's allocated size for a block volume: it is sparse). */
export function volumeUsed(engine: Engine, v: VolumeRecord): number {
  volumePool(engine, v);
  return treeSize(v.type === 'block' ? join(v.mountpoint, '..') : v.mountpoint);
}

/** The instances whose mounts use the volume. */
export function volumeUsers(engine: Engine, name: string): InstanceRecord[] {
  return engine.store.list().filter((r) => r.config.mounts.some((m) => m.type === 'bind' && m.volume === name));
}

/** Everything in a volume's snapshots directory (snapshots, and anything a crash left there). */
function snapshotDirs(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** The names of a volume's snapshots, sorted. */
export function snapshotNames(engine: Engine, v: VolumeRecord): string[] {
  const pool = volumePool(engine, v);
  try {
    return readdirSync(poolLayout(engine.root, pool).snapshots(v.name))
      .filter((n) => STORAGE_NAME.test(n))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Remove a volume, its snapshots and its data; refused while an instance uses it (with force too, as docker
 * does). Journalled: once begun, a crash is finished by the next hull.
 */
export function removeVolume(engine: Engine, name: string, opts: { force?: boolean } = {}): void {
  const v = VOLUME_NAME.test(name) ? read(engine.root, name) : undefined;
  if (!v) {
    if (opts.force) return;
    throw new NotFoundError(`no such volume: ${name}`);
  }
  const users = volumeUsers(engine, name);
  if (users.length)
    throw new ConflictError(
      `volume ${name} is in use by ${users.map((u) => u.name).join(', ')}: remove ${users.length > 1 ? 'them' : 'it'} first`,
    );
  const journal = storageJournal(engine);
  const pool = volumePool(engine, v);
  const drv = poolDriver(pool.driver);
  const layout = poolLayout(engine.root, pool);
  const recDir = rootPaths(engine.root).volumeDir(name);
  const tag = randomBytes(4).toString('hex');
  const trash = join(layout.tmp, `rm-${name}-${tag}`);
  // the default pool keeps snapshots in the record's directory (gone with it); other pools beside the volumes
  const snaps = pool.name === DEFAULT_POOL ? [] : snapshotDirs(layout.snapshots(name));
  const goneRec = join(rootPaths(engine.root).volumes, `.removing-${name}-${tag}`);
  mkdirSync(layout.tmp, { recursive: true, mode: 0o700 });
  const e = journal.begin('rm', pool.name, [...snaps, trash, goneRec]);
  e.finish = [
    { from: layout.volume(name), to: trash },
    { from: recDir, to: goneRec },
  ];
  journal.save(e);
  // the data out of the record's directory first (the default pool keeps it there), then the record out of sight
  renameSync(layout.volume(name), trash);
  renameSync(recDir, goneRec);
  for (const s of snaps) drv.removeDir(pool, s);
  if (pool.name !== DEFAULT_POOL) rmSync(layout.snapshots(name), { recursive: true, force: true });
  drv.removeDir(pool, trash);
  rmSync(goneRec, { recursive: true, force: true });
  journal.end(e);
  engine.store.addEvent('volume', 'destroy', name, name, {});
}

/** Remove every volume no instance uses (docker 20.10's prune); with labels, only those that have them all. */
export function pruneVolumes(engine: Engine, labels: string[] = []): string[] {
  const removed: string[] = [];
  for (const v of listVolumes(engine)) {
    if (!labels.every((l) => matchLabel(v.labels, l))) continue;
    if (volumeUsers(engine, v.name).length) continue;
    try {
      removeVolume(engine, v.name);
      removed.push(v.name);
    } catch (e) {
      if (!(e instanceof ConflictError || e instanceof NotFoundError)) throw e;
    }
  }
  return removed;
}

/** A `key` or `key=value` label filter. */
export function matchLabel(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf('=');
  return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
}

/**
 * docker's copy-up: fill an empty volume directory with what the image has at `target` (its merged layers:
 * whiteouts and opaque directories respected). Owners, modes and times are kept; special files are skipped.
 */
export function copyUpFromImage(layers: readonly string[], target: string, dest: string): void {
  const view = new LayerView(layers);
  const rel = posix.normalize(target).replace(/^\/+/, '');
  const top = view.lookup(rel);
  if (!top?.stat.isDirectory()) return;
  const copy = (r: string, out: string): void => {
    for (const n of view.readdir(r)) {
      const e = view.lookup(posix.join(r, n));
      if (!e) continue;
      const to = join(out, n);
      const st = e.stat;
      if (st.isDirectory()) {
        mkdirSync(to, { mode: st.mode & 0o7777 });
        copy(posix.join(r, n), to);
      } else if (st.isFile()) copyFileSync(e.abs, to);
      else if (st.isSymbolicLink()) symlinkSync(readlinkSync(e.abs), to);
      else continue;
      lchownSync(to, st.uid, st.gid);
      if (!st.isSymbolicLink()) chmodSync(to, st.mode & 0o7777);
      lutimesSync(to, st.atime, st.mtime);
    }
  };
  copy(rel, dest);
  chownSync(dest, top.stat.uid, top.stat.gid);
  chmodSync(dest, top.stat.mode & 0o7777);
}

function isEmptyDir(p: string): boolean {
  try {
    return readdirSync(p).length === 0;
  } catch {
    return false;
  }
}

/**
 * Fill in an instance's volumes before it is made: named ones are made on first use, anonymous ones get a name,
 * and every path the image declares as a VOLUME that no mount covers gets an anonymous volume (docker's rule; not
 * for build steps, which get no image). A new or empty filesystem volume gets the image's files at its path.
 * Block volumes are refused: containers mount filesystems, and VMs take block volumes as disks (to come).
 * Returns the anonymous volumes made, for the caller to remove if the instance is not made after all.
 */
export async function resolveVolumes(
  engine: Engine,
  config: InstanceConfig,
  image: ImageRecord | undefined,
): Promise<string[]> {
  const made: string[] = [];
  const targets = new Set(config.mounts.map((m) => m.target.replace(/\/+$/, '') || '/'));
  for (const path of Object.keys(image?.config.config?.Volumes ?? {})) {
    const t = path.replace(/\/+$/, '') || '/';
    if (targets.has(t) || !t.startsWith('/')) continue;
    targets.add(t);
    config.mounts.push({ type: 'bind', source: '', target: t, readonly: false, volume: '', anonymous: true });
  }
  let layers: string[] | undefined;
  try {
    for (const m of config.mounts) {
      if (m.type !== 'bind' || m.volume === undefined) continue;
      const fresh = !m.volume || !existsSync(join(rootPaths(engine.root).volumeDir(m.volume), VOLUME_FILE));
      const v = createVolume(engine, {
        ...(m.volume ? { name: m.volume } : {}),
        anonymous: !!m.anonymous,
        ...(fresh && m.volumeOptions ? volumeOptions(m.volumeOptions) : {}),
      });
      if (fresh && m.anonymous) made.push(v.name);
      (m as BindMount).volume = v.name;
      if (v.type === 'block')
        throw new InvalidArgumentError(
          `volume ${v.name} is a block volume: containers mount filesystem volumes only (block volumes as VM disks are not supported yet); use a --type filesystem volume`,
        );
      volumePool(engine, v);
      m.source = v.mountpoint;
      if (image && !m.noCopy && isEmptyDir(v.mountpoint)) {
        layers ??= await engine.images.layerDirs(image);
        copyUpFromImage(layers, m.target, v.mountpoint);
      }
    }
  } catch (e) {
    for (const n of made) removeVolume(engine, n, { force: true });
    throw e;
  }
  return made;
}

/** Remove an instance's anonymous volumes (rm -v, --rm); those another instance also uses are kept. */
export function removeAnonymousVolumes(engine: Engine, rec: InstanceRecord): void {
  for (const m of rec.config.mounts) {
    if (m.type !== 'bind' || !m.anonymous || !m.volume) continue;
    try {
      removeVolume(engine, m.volume);
    } catch (e) {
      if (!(e instanceof ConflictError || e instanceof NotFoundError)) throw e;
    }
  }
}

/** Volumes in a pool (for `storage pool inspect` and `rm`). */
export function poolVolumes(engine: Engine, pool: string): VolumeRecord[] {
  return listVolumes(engine).filter((v) => v.pool === pool);
}

/** Mount every pool that is not (after a host restart); a pool that cannot be mounted is left for its first use to report. */
export function mountPools(engine: Engine): void {
  for (const p of listPools(engine.root)) {
    try {
      poolReady(p);
    } catch {
      /* reported when a volume of it is used */
    }
  }
}

/** Make sure the pools of an instance's volumes are mounted before it starts. */
export function volumesReady(engine: Engine, config: InstanceConfig): void {
  for (const m of config.mounts) {
    if (m.type !== 'bind' || !m.volume) continue;
    const v = read(engine.root, m.volume);
    if (v) volumePool(engine, v);
  }
}

/** `storage pool rm`: refused for the default pool and while the pool holds volumes or VM root disks. */
export async function removeStoragePool(engine: Engine, name: string): Promise<void> {
  if (name === DEFAULT_POOL) throw new ConflictError('the default pool cannot be removed');
  const p = getPool(engine.root, name);
  const vols = poolVolumes(engine, name);
  if (vols.length)
    throw new ConflictError(
      `storage pool ${name} holds volumes (${vols.map((v) => v.name).join(', ')}): remove them first (hull volume rm)`,
    );
  const disks = poolVmDisks(engine, name);
  if (disks.length)
    throw new ConflictError(
      `storage pool ${name} holds the root disks of VMs (${disks.map((d) => d.instance).join(', ')}): remove them first (hull rm)`,
    );
  await removePool(engine.root, p);
  engine.store.addEvent('storage', 'destroy', name, name, {});
}

/** `storage pool create`, with its event. */
export async function createStoragePool(
  engine: Engine,
  opts: { name: string; driver: string; source?: string; size?: number },
): Promise<PoolRecord> {
  const p = await createPool(engine.root, opts);
  engine.store.addEvent('storage', 'create', p.name, p.name, { driver: p.driver });
  return p;
}

export { DEFAULT_POOL, getPool, listPools, type PoolRecord, poolSpace } from '../storage/pools.js';
