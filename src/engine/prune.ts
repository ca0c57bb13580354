/**
 * The prune verbs, one place for `hull container prune`, `hull network prune`, `hull image prune`,
 * `hull builder prune` and `hull system prune` (all of them in docker's order: instances first, so that
 * their networks and images become unused).
 */
import type { Engine } from './engine.js';
import { refresh } from './lifecycle/exit.js';
import { removeInstance } from './lifecycle/remove.js';
import { networkUsers, removeNetwork } from './networking.js';
import { DEFAULT_NETWORK } from '../network/store.js';
import { pruneBuildCache, pruneImages } from './images.js';
import type { GcResult } from '../image/store.js';

export interface PruneReport {
  instances: string[];
  networks: string[];
  images: string[];
  gc?: GcResult;
  cacheEntries: number;
  /** what could not be removed, one line each */
  errors: string[];
}

/** Remove every instance that is not running (exited or created). */
export async function pruneInstances(engine: Engine, errors: string[] = []): Promise<string[]> {
  const removed: string[] = [];
  for (const listed of engine.store.list()) {
    const rec = listed.state === 'running' || listed.state === 'paused' ? await refresh(engine, listed) : listed;
    if (!rec || (rec.state !== 'exited' && rec.state !== 'created')) continue;
    try {
      await removeInstance(engine, rec);
      removed.push(rec.id);
    } catch (e) {
      // started or removed meanwhile by another hull process: not ours to prune any more
      if (engine.store.get(rec.id)) errors.push(`${rec.name} not removed: ${(e as Error).message}`);
    }
  }
  return removed;
}

/** Remove every network no instance names (never the default network). */
export async function pruneNetworks(engine: Engine, errors: string[] = []): Promise<string[]> {
  const removed: string[] = [];
  for (const d of engine.networks.store.list()) {
    if (d.name === DEFAULT_NETWORK || networkUsers(engine, d.name).length > 0) continue;
    try {
      await removeNetwork(engine, d.name);
      removed.push(d.name);
    } catch (e) {
      errors.push(`network ${d.name} not removed: ${(e as Error).message}`);
    }
  }
  return removed;
}

/** hull system prune: stopped instances, unused networks, dangling (with `all`: unused) images, the build cache. */
export async function pruneSystem(engine: Engine, all: boolean): Promise<PruneReport> {
  const errors: string[] = [];
  const instances = await pruneInstances(engine, errors);
  const networks = await pruneNetworks(engine, errors);
  const img = await pruneImages(engine, all);
  const cache = await pruneBuildCache(engine, all);
  // the drivers' caches made again on demand (VM templates)
  let driverCaches = 0;
  for (const d of engine.allDrivers()) {
    if (!d.pruneCaches) continue;
    driverCaches += await d.pruneCaches(engine.root).catch((e: Error) => {
      errors.push(`${d.kind} caches not removed: ${e.message}`);
      return 0;
    });
  }
  const gc = { ...img.gc, reclaimed: img.gc.reclaimed + cache.reclaimed + driverCaches };
  return { instances, networks, images: img.images, gc, cacheEntries: img.cacheEntries + cache.entries, errors };
}
