/**
 * hull system df: the space images, instances and the build cache take in the root, in docker's four kinds
 * (images, containers, local volumes, build cache). Layers are counted once however many images share them; a
 * volume's LINKS are the instances whose mounts name it.
 */
import { statSync } from 'node:fs';
import { treeSize } from '../common/fsutil.js';
import { instancePaths } from '../common/paths.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';
import { BuildCache } from './build/cache.js';
import { listVolumes, volumeUsed, type VolumeRecord } from './volumes.js';

export interface ImageUsage {
  id: string;
  names: string[];
  created: string;
  /** all its layers */
  size: number;
  /** of which layers other images have too */
  sharedSize: number;
  /** instances that use it */
  containers: number;
}

export interface InstanceUsage {
  rec: InstanceRecord;
  /** its own writes: a container's upper directory, a VM's disk overlay */
  size: number;
}

export interface CacheUsage {
  id: string;
  created: number;
  /** the layers only the cache holds (no image has them) */
  size: number;
  shared: boolean;
}

export interface VolumeUsage {
  volume: VolumeRecord;
  /** bytes its files take (a block volume: its disk file's allocated blocks) */
  size: number;
  /** instances whose mounts use it (docker's LINKS, RefCount) */
  links: number;
}

export interface DiskUsage {
  /** the distinct layers of every image */
  layersSize: number;
  /** the distinct layers of images no instance uses, and of none that one uses */
  imagesReclaimable: number;
  images: ImageUsage[];
  instances: InstanceUsage[];
  buildCache: CacheUsage[];
  buildCacheSize: number;
  volumes: VolumeUsage[];
  /** the drivers' own caches that are made again on demand (VM templates), by kind */
  driverCaches: { kind: string; count: number; size: number }[];
}

/** Each volume's size and the number of instances that use it. */
export function volumeUsage(engine: Engine, instances: InstanceRecord[] = engine.store.list()): VolumeUsage[] {
  const links = new Map<string, number>();
  for (const r of instances)
    for (const v of new Set(r.config.mounts.flatMap((m) => (m.type === 'bind' && m.volume ? [m.volume] : []))))
      links.set(v, (links.get(v) ?? 0) + 1);
  return listVolumes(engine).map((volume) => {
    let size = 0;
    try {
      size = volumeUsed(engine, volume);
    } catch {
      // its pool is gone or not mounted: nothing to count
    }
    return { volume, size, links: links.get(volume.name) ?? 0 };
  });
}

/** Space a file takes on disk (a sparse qcow2 overlay: its allocated blocks). */
function allocated(path: string): number {
  try {
    return statSync(path).blocks * 512;
  } catch {
    return 0;
  }
}

export async function diskUsage(engine: Engine): Promise<DiskUsage> {
  const images = await engine.images.list();
  const instances = engine.store.list();
  const users = new Map<string, number>();
  for (const r of instances) users.set(r.imageId, (users.get(r.imageId) ?? 0) + 1);
  const layerSize = new Map<string, number>();
  const holders = new Map<string, number>();
  for (const img of images)
    for (const d of new Set(img.layers.map((l) => l.digest))) {
      holders.set(d, (holders.get(d) ?? 0) + 1);
      layerSize.set(d, img.layers.find((l) => l.digest === d)!.size);
    }
  const usedLayers = new Set(images.filter((i) => users.has(i.id)).flatMap((i) => i.layers.map((l) => l.digest)));
  let layersSize = 0;
  let imagesReclaimable = 0;
  for (const [d, size] of layerSize) {
    layersSize += size;
    if (!usedLayers.has(d)) imagesReclaimable += size;
  }
  const imageUsage = images.map((img) => {
    const own = [...new Set(img.layers.map((l) => l.digest))];
    return {
      id: img.id,
      names: img.names,
      created: img.created,
      size: own.reduce((n, d) => n + (layerSize.get(d) ?? 0), 0),
      sharedSize: own.filter((d) => (holders.get(d) ?? 0) > 1).reduce((n, d) => n + (layerSize.get(d) ?? 0), 0),
      containers: users.get(img.id) ?? 0,
    };
  });
  const instanceUsage = instances.map((rec) => {
    const p = instancePaths(engine.instanceDir(rec.id));
    // a container's writes are its upper directory, a VM's its disk overlay; each has only its own
    return { rec, size: treeSize(p.upper) + allocated(rec.config.vm?.rootDisk ?? p.disk) };
  });
  const cache = new BuildCache(engine.root);
  let entries: { key: string; created: number; layers: string[] }[];
  try {
    entries = cache.entries();
  } finally {
    cache.close();
  }
  const counted = new Set<string>();
  let buildCacheSize = 0;
  const buildCache = entries.map((e) => {
    let size = 0;
    for (const d of e.layers) {
      if (layerSize.has(d) || !engine.images.hasBlob(d)) continue;
      const bytes = allocatedBlob(engine, d);
      size += bytes;
      if (!counted.has(d)) {
        counted.add(d);
        buildCacheSize += bytes;
      }
    }
    return { id: e.key, created: e.created, size, shared: e.layers.some((d) => layerSize.has(d)) };
  });
  const volumes = volumeUsage(engine, instances);
  const driverCaches = engine.allDrivers().flatMap((d) => d.cacheUsage?.(engine.root) ?? []);
  return {
    layersSize,
    imagesReclaimable,
    images: imageUsage,
    instances: instanceUsage,
    buildCache,
    buildCacheSize,
    volumes,
    driverCaches,
  };
}

function allocatedBlob(engine: Engine, digest: string): number {
  try {
    return statSync(engine.images.blobPath(digest)).size;
  } catch {
    return 0;
  }
}

/** Unpacked sizes of layer directories (layers never change once unpacked). */
const layerTreeSizes = new Map<string, number>();

/**
 * docker's SizeRw and SizeRootFs of an instance: its own writes (as diskUsage counts them), and those plus the
 * unpacked size of its image's layers (the whole root it sees).
 */
export async function instanceSizes(engine: Engine, rec: InstanceRecord): Promise<{ rw: number; rootFs: number }> {
  const p = instancePaths(engine.instanceDir(rec.id));
  const rw = treeSize(p.upper) + allocated(rec.config.vm?.rootDisk ?? p.disk);
  let image = 0;
  const img = await engine.images.resolve(rec.imageId).catch(() => undefined);
  if (img)
    for (const dir of await engine.images.layerDirs(img)) {
      let n = layerTreeSizes.get(dir);
      if (n === undefined) {
        n = treeSize(dir);
        layerTreeSizes.set(dir, n);
      }
      image += n;
    }
  return { rw, rootFs: rw + image };
}
