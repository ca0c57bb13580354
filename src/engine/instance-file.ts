/**
 * Each instance's own copy of its record, `<root>/containers/<id>/instance.json`: what `hull system recover`
 * rebuilds the store's row from when hull.db is lost or damaged (src/engine/recover.ts). It holds what only the
 * store knew (id, name, kind, image, the resolved configuration with its labels, the creation time); the state
 * (running, exited with a code) is read back from the supervisor and its exit file, which the drivers keep anyway.
 *
 * Written when the instance is created and again whenever its configuration changes (update, network connect and
 * disconnect), by a rename over the old one, so that a crash leaves the old or the new copy, never half of one.
 * Not fsync'd: it is as durable as the store's own last transaction (SQLite with synchronous=NORMAL).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { InstanceConfig, InstanceKind } from '../common/instance.js';
import { DRIVER_FACTORIES } from './drivers.js';
import type { InstanceRecord } from './store.js';
import { migrateConfig } from './migrate.js';
import { INSTANCE_FILE, instancePaths } from '../common/paths.js';

export { INSTANCE_FILE } from '../common/paths.js';
const VERSION = 1;

export interface SavedInstance {
  version: number;
  id: string;
  name: string;
  kind: InstanceKind;
  image: string;
  imageId: string;
  config: InstanceConfig;
  createdAt: number;
}

/**
 * Write (or replace) the instance's saved record in its directory. `create` makes the directory; later
 * changes write only into one that exists (an instance removed meanwhile must not get a directory back).
 */
export function saveInstanceFile(
  dir: string,
  rec: Pick<InstanceRecord, 'id' | 'name' | 'kind' | 'image' | 'imageId' | 'config' | 'createdAt'>,
  o: { create?: boolean } = {},
): void {
  const saved: SavedInstance = {
    version: VERSION,
    id: rec.id,
    name: rec.name,
    kind: rec.kind,
    image: rec.image,
    imageId: rec.imageId,
    config: rec.config,
    createdAt: rec.createdAt,
  };
  if (o.create) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = instancePaths(dir).instanceFile;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (!o.create && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
}

/** The saved record of instance `id`, or why there is none that can be used (one phrase). */
export function readInstanceFile(dir: string, id: string): SavedInstance | string {
  let raw: string;
  try {
    raw = readFileSync(instancePaths(dir).instanceFile, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT'
      ? `it has no saved record (${INSTANCE_FILE})`
      : `its ${INSTANCE_FILE} cannot be read (${(e as Error).message})`;
  }
  let s: Partial<SavedInstance>;
  try {
    s = JSON.parse(raw) as Partial<SavedInstance>;
  } catch {
    return `its ${INSTANCE_FILE} is not valid JSON`;
  }
  const ok =
    typeof s === 'object' &&
    s !== null &&
    s.id === id &&
    typeof s.name === 'string' &&
    s.name !== '' &&
    DRIVER_FACTORIES.some((f) => f.kind === s.kind) &&
    typeof s.image === 'string' &&
    typeof s.imageId === 'string' &&
    typeof s.config === 'object' &&
    s.config !== null &&
    Array.isArray(s.config.command) &&
    typeof s.createdAt === 'number';
  if (!ok) return `its ${INSTANCE_FILE} is incomplete or names another instance`;
  return { ...(s as SavedInstance), config: migrateConfig(s.config) };
}
