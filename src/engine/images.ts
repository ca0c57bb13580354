import type { Engine } from './engine.js';
import type { GcResult } from '../image/store.js';

/**
 * Image removal as the engine sees it: the image store collects garbage, and the engine tells it which
 * images instances still use. `inUse` is read under the image store's lock (see ImageStore.useImage), so
 * an instance created at the same moment is either seen here or finds its image gone.
 */
function inUse(engine: Engine): () => Set<string> {
  return () => new Set(engine.store.list().map((r) => r.imageId));
}

/** hull rmi: untag/remove; an image an instance still uses keeps existing without a name (rmi -f). */
export function removeImage(engine: Engine, ref: string, force: boolean): Promise<string[]> {
  return engine.images.remove(ref, { force, inUse: inUse(engine) });
}

/** hull image prune: dangling images (all unused ones with `all`), then unreferenced blobs and layers. */
export function pruneImages(engine: Engine, all: boolean): Promise<{ images: string[]; gc: GcResult }> {
  return engine.images.prune({ all, inUse: inUse(engine) });
}
