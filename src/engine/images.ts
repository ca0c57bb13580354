import type { Engine } from './engine.js';
import type { ImageRecord } from './transfer.js';
import { ConflictError } from '../common/errors.js';
import type { GcResult } from '../image/store.js';
import { BuildCache } from './build/cache.js';
import { describeNoSpace } from '../host/fserror.js';
import { rootPaths } from '../common/paths.js';

/**
 * Image removal as the engine sees it: the image store collects garbage, and the engine tells it which
 * images instances still use. `inUse` is read under the image store's lock (see ImageStore.useImage), so
 * an instance created at the same moment is either seen here or finds its image gone.
 */
function inUse(engine: Engine): () => Set<string> {
  return () => new Set(engine.store.list().map((r) => r.imageId));
}

/**
 * Refuse to remove the last name of an image that instances use, unless forced (docker's rmi rule); the CLI's
 * rmi and the API's DELETE /images share it.
 */
export async function checkImageRemovable(engine: Engine, ref: string, force: boolean): Promise<void> {
  const img = await engine.images.resolve(ref);
  const users = engine.store.list().filter((r) => r.imageId === img.id);
  if (users.length && !force && img.names.length <= 1) {
    throw new ConflictError(
      `image ${ref} is used by instance ${users[0]!.name}; remove the instance first or use rmi -f`,
    );
  }
}

/** hull rmi: untag/remove; an image an instance still uses keeps existing without a name (rmi -f). */
export async function removeImage(engine: Engine, ref: string, force: boolean): Promise<string[]> {
  const lines = await engine.images.remove(ref, { force, inUse: inUse(engine) }).catch((e: unknown) => {
    throw describeNoSpace(e, { path: rootPaths(engine.root).images, action: `removing image ${ref}` });
  });
  await pruneDriverCaches(engine);
  return lines;
}

/**
 * Let every driver drop what it caches per image (a VM's root disk) for images that are gone now. The
 * engine asks each driver the same; it does not know what they cache.
 */
async function pruneDriverCaches(engine: Engine): Promise<number> {
  const keep = new Set<string>([...(await engine.images.list()).map((i) => i.id), ...inUse(engine)()]);
  let freed = 0;
  for (const driver of engine.allDrivers()) {
    if (driver.pruneImageCaches) freed += await driver.pruneImageCaches(engine.root, keep);
  }
  return freed;
}

/** hull image prune: dangling images (all unused ones with `all`), then unreferenced blobs and layers. */
export async function pruneImages(
  engine: Engine,
  all: boolean,
): Promise<{ images: string[]; gc: GcResult; cacheEntries: number }> {
  const r = await engine.images.prune({ all, inUse: inUse(engine) }).catch((e: unknown) => {
    throw describeNoSpace(e, { path: rootPaths(engine.root).images, action: 'pruning images' });
  });
  r.gc.reclaimed += await pruneDriverCaches(engine);
  // build cache entries over layers that are gone now can never hit again
  return { ...r, cacheEntries: (await pruneBuildCache(engine, false)).entries };
}

/**
 * hull builder prune: the build cache (every entry with `all`, else those whose layers are gone). With
 * `all`, the layers only the cache held (intermediate steps, failed builds) are collected at once, so the
 * space reported is the space freed; dangling entries hold no space.
 */
export async function pruneBuildCache(engine: Engine, all: boolean): Promise<{ entries: number; reclaimed: number }> {
  const cache = new BuildCache(engine.root);
  let entries: number;
  try {
    entries = cache.prune({ all, present: (d) => engine.images.hasBlob(d) });
  } finally {
    cache.close();
  }
  if (!all) return { entries, reclaimed: 0 };
  const gc = await engine.images.collect(inUse(engine));
  return { entries, reclaimed: gc.reclaimed };
}

export interface HistoryStep {
  /** when the step ran (the image config's, ISO 8601), or '' when it does not say */
  created: string;
  createdBy: string;
  comment: string;
  /** bytes of the layer the step made (0 for a step without one) */
  size: number;
  /** that layer's digest, or null */
  layer: string | null;
}

/** The steps that made an image, newest first, each paired with the layer it made (as docker history pairs them). */
export function imageHistory(img: ImageRecord): HistoryStep[] {
  let layer = 0;
  return (img.config.history ?? [])
    .map((h) => {
      const l = h.empty_layer ? undefined : img.layers[layer++];
      return {
        created: h.created ?? '',
        createdBy: h.created_by ?? '',
        comment: h.comment ?? '',
        size: l?.size ?? 0,
        layer: l?.digest ?? null,
      };
    })
    .reverse();
}
