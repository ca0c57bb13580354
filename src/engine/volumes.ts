/**
 * Volumes, as docker's `local` driver keeps them: a directory per volume under the root
 * (`volumes/<name>/_data`, bind-mounted into instances; a VM gets it over virtiofs like any bind) and its record
 * (`volumes/<name>/volume.json`). Named volumes are made by `volume create` or on first use (`-v NAME:/path`);
 * anonymous ones (`-v /path`, an image's VOLUME) get a random name and go with their instance on `rm -v` and
 * `--rm`. A volume that an instance uses (running or not) cannot be removed.
 *
 * Small on purpose: storage pools (issue 14) will move volumes into pools; until then a volume is a plain
 * directory on the root's filesystem, with no size limit and no copy of the image's files at the mount point.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import type { BindMount, InstanceConfig } from '../common/instance.js';
import { VOLUME_NAME } from '../common/parse.js';
import { rootPaths, VOLUME_DATA, VOLUME_FILE } from '../common/paths.js';
import type { ImageRecord } from '../image/store.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

export interface VolumeRecord {
  name: string;
  driver: 'local';
  /** the directory bind-mounted into instances */
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  anonymous: boolean;
}

function checkName(name: string): void {
  if (!VOLUME_NAME.test(name) || name.length > 255)
    throw new InvalidArgumentError(`invalid volume name "${name}": use letters, digits, _ . - (two or more)`);
}

function read(root: string, name: string): VolumeRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(rootPaths(root).volumeDir(name), VOLUME_FILE), 'utf8')) as VolumeRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw e;
  }
}

/** Make a volume (a random name when none is given); an existing one of that name is returned as it is. */
export function createVolume(
  engine: Engine,
  opts: { name?: string; labels?: Record<string, string>; anonymous?: boolean } = {},
): VolumeRecord {
  const name = opts.name || randomBytes(32).toString('hex');
  checkName(name);
  const existing = read(engine.root, name);
  if (existing) return existing;
  const dir = rootPaths(engine.root).volumeDir(name);
  const data = join(dir, VOLUME_DATA);
  mkdirSync(data, { recursive: true, mode: 0o755 });
  const rec: VolumeRecord = {
    name,
    driver: 'local',
    mountpoint: data,
    createdAt: new Date().toISOString(),
    labels: opts.labels ?? {},
    anonymous: opts.anonymous ?? false,
  };
  // the record last: a volume dir without one is half-made and made again on the next create
  writeFileAtomic(join(dir, VOLUME_FILE), JSON.stringify(rec, null, 2) + '\n', 0o644);
  engine.store.addEvent('volume', 'create', name, name, { driver: 'local' });
  return rec;
}

export function listVolumes(engine: Engine): VolumeRecord[] {
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
  const r = VOLUME_NAME.test(name) ? read(engine.root, name) : undefined;
  if (!r) throw new NotFoundError(`no such volume: ${name}`);
  return r;
}

/** The instances whose mounts use the volume. */
export function volumeUsers(engine: Engine, name: string): InstanceRecord[] {
  return engine.store.list().filter((r) => r.config.mounts.some((m) => m.type === 'bind' && m.volume === name));
}

/** Remove a volume and its data; refused while an instance uses it (with force too, as docker does). */
export function removeVolume(engine: Engine, name: string, opts: { force?: boolean } = {}): void {
  if (!VOLUME_NAME.test(name) || !read(engine.root, name)) {
    if (opts.force) return;
    throw new NotFoundError(`no such volume: ${name}`);
  }
  const users = volumeUsers(engine, name);
  if (users.length)
    throw new ConflictError(
      `volume ${name} is in use by ${users.map((u) => u.name).join(', ')}: remove ${users.length > 1 ? 'them' : 'it'} first`,
    );
  const dir = rootPaths(engine.root).volumeDir(name);
  // out of sight first (one rename), then the data
  const gone = join(rootPaths(engine.root).volumes, `.removing-${name}-${randomBytes(4).toString('hex')}`);
  renameSync(dir, gone);
  rmSync(gone, { recursive: true, force: true });
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
 * Fill in an instance's volumes before it is made: named ones are made on first use, anonymous ones get a name,
 * and every path the image declares as a VOLUME that no mount covers gets an anonymous volume (docker's rule; not
 * for build steps, which get no image).
 * Returns the anonymous volumes made, for the caller to remove if the instance is not made after all.
 */
export function resolveVolumes(engine: Engine, config: InstanceConfig, image: ImageRecord | undefined): string[] {
  const made: string[] = [];
  const targets = new Set(config.mounts.map((m) => m.target.replace(/\/+$/, '') || '/'));
  for (const path of Object.keys(image?.config.config?.Volumes ?? {})) {
    const t = path.replace(/\/+$/, '') || '/';
    if (targets.has(t) || !t.startsWith('/')) continue;
    targets.add(t);
    config.mounts.push({ type: 'bind', source: '', target: t, readonly: false, volume: '', anonymous: true });
  }
  for (const m of config.mounts) {
    if (m.type !== 'bind' || m.volume === undefined) continue;
    const fresh = !m.volume || !existsSync(rootPaths(engine.root).volumeDir(m.volume));
    const v = createVolume(engine, { ...(m.volume ? { name: m.volume } : {}), anonymous: !!m.anonymous });
    if (fresh && m.anonymous) made.push(v.name);
    (m as BindMount).volume = v.name;
    m.source = v.mountpoint;
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
