/**
 * The image store's garbage collection. It is safe against concurrent use by other hull processes: it
 * runs under the store lock and keeps (1) everything the index reaches, (2) every ref of a live lease (an
 * operation in progress, such as a build, see ../lease.ts), (3) images the caller names as in use (the
 * engine passes the images of its instances, read under the same lock), and (4) layer directories mounted
 * as an overlay lower directory right now. An instance is recorded under the lock too
 * ({@link ImageGc.useImage}), so a collector sees either the instance or an image it may delete, which the
 * creator then reports as gone instead of running without it. Doomed layer directories are renamed away
 * under the lock and deleted after it. Partial downloads are collected by ./downloads.ts.
 */
import { readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../../common/errors.js';
import { treeSize } from '../../common/fsutil.js';
import { digestHex } from '../layout.js';
import { Lease, liveLeaseRefs } from '../lease.js';
import type { OciImageConfigFile } from '../types.js';
import { PARTIAL_MAX_AGE_MS, type Downloads } from './downloads.js';
import { refName, type ImageNames, type ImageRecord } from './names.js';
import type { StoreParts } from './parts.js';

/** What a prune or remove collected. */
export interface GcResult {
  /** blob digests deleted */
  blobs: string[];
  /** extracted layer directories deleted (diffIDs) */
  layers: string[];
  /** bytes freed (blobs plus extracted files) */
  reclaimed: number;
}

export class ImageGc {
  constructor(
    private readonly s: StoreParts,
    private readonly names: ImageNames,
    private readonly downloads: Downloads,
  ) {}

  private get leasesDir(): string {
    return join(this.s.imagesDir, '.leases');
  }

  /**
   * `hull image prune`: remove dangling images (with `all`, every image) that no instance uses
   * (`inUse` gives their ids; it is called under the store lock), then collect the garbage.
   * Returns the removed images' ids and what was freed.
   */
  async prune(opts: { all?: boolean; inUse: () => Set<string> }): Promise<{ images: string[]; gc: GcResult }> {
    let doomed: string[] = [];
    const result = await this.s.layout.withLock(() => {
      const used = opts.inUse();
      const index = this.s.layout.readIndex();
      const removed = new Set<string>();
      const keepDigests = new Set<string>();
      for (const d of index.manifests) {
        const id = this.names.recordOrStub(index, d.digest).id;
        if (used.has(id) || (!opts.all && refName(d) !== undefined)) keepDigests.add(d.digest);
      }
      index.manifests = index.manifests.filter((d) => {
        if (keepDigests.has(d.digest)) return true;
        removed.add(this.names.recordOrStub(index, d.digest).id);
        return false;
      });
      if (removed.size) this.s.layout.writeIndex(index);
      const gc = this.collectLocked(used, opts.all ? 0 : PARTIAL_MAX_AGE_MS);
      doomed = gc.doomed;
      return { images: [...removed], gc: gc.result };
    });
    await this.deleteDoomed(doomed);
    return result;
  }

  /**
   * Collect the garbage only (no image is removed): blobs and extracted layers that no image, lease,
   * in-use image or mount needs, such as the layers of build steps once the build cache forgets them.
   */
  async collect(inUse: () => Set<string>): Promise<GcResult> {
    let doomed: string[] = [];
    const result = await this.s.layout.withLock(() => {
      const gc = this.collectLocked(inUse());
      doomed = gc.doomed;
      return gc.result;
    });
    await this.deleteDoomed(doomed);
    return result;
  }

  /** A lease for an operation in progress: what it retains survives garbage collection until release. */
  lease(): Lease {
    return new Lease(this.leasesDir);
  }

  /**
   * Retain an image's config and layers (blobs and extracted directories) in `lease`, after checking under
   * the lock that they are all still there. NotFoundError when a collector removed one since.
   */
  async retain(lease: Lease, configDigest: string | null, layers: { digest: string; diffId: string }[]): Promise<void> {
    await this.s.layout.withLock(() => {
      const missing = [...(configDigest ? [configDigest] : []), ...layers.map((l) => l.digest)].find(
        (d) => !this.s.layout.hasBlob(d),
      );
      if (missing)
        throw new NotFoundError(
          `blob ${missing.slice(0, 19)} left the image store meanwhile (hull rmi or image prune in another process)`,
        );
      lease.add([...(configDigest ? [configDigest] : []), ...layers.flatMap((l) => [l.digest, l.diffId])]);
    });
  }

  /**
   * Run `record` (which records an instance of `image`) under the store lock, after checking that the
   * image is still complete: with {@link prune} taking the same lock and reading the instances, an image
   * is either seen in use or reported gone here, never deleted under a new instance.
   */
  async useImage<T>(image: ImageRecord, record: () => T): Promise<T> {
    return this.s.layout.withLock(() => {
      const missing = [image.id, ...image.layers.map((l) => l.digest)].find((d) => !this.s.layout.hasBlob(d));
      if (missing) {
        const name = image.names[0] ?? image.id.slice(7, 19);
        throw new NotFoundError(
          `image ${name} was removed meanwhile (blob ${missing.slice(0, 19)} is gone: hull rmi or image prune in another process); pull or build it again`,
        );
      }
      return record();
    });
  }

  /**
   * Garbage collection, under the lock: delete unreferenced blobs, and rename extracted layer directories
   * no remaining image, lease, in-use image or overlay mount needs into the temp area (returned as
   * `doomed`, for deleteDoomed once the lock is released).
   */
  collectLocked(used: Set<string>, partialMaxAgeMs = PARTIAL_MAX_AGE_MS): { result: GcResult; doomed: string[] } {
    const { layout, layersDir } = this.s;
    const leased = liveLeaseRefs(this.leasesDir);
    const sizes = new Map<string, number>();
    for (const d of this.blobDigests()) sizes.set(d, this.blobSize(d));
    const blobs = layout.deleteUnreferencedBlobs(leased);
    let reclaimed =
      blobs.reduce((sum, d) => sum + (sizes.get(d) ?? 0), 0) + this.downloads.collectLocked(partialMaxAgeMs);
    const keep = new Set<string>([...leased].filter((r) => r.startsWith('sha256:')).map((r) => r.slice(7)));
    const index = layout.readIndex();
    for (const d of index.manifests) {
      try {
        for (const l of this.names.record(index, d.digest).layers) keep.add(digestHex(l.diffId));
      } catch {
        /* unreadable entry: reaches nothing */
      }
    }
    for (const id of used) {
      // an instance's image that left the index (created before leases existed): keep what its config names
      try {
        const cfg = layout.readJson<OciImageConfigFile>(id);
        for (const diff of cfg?.rootfs?.diff_ids ?? []) keep.add(digestHex(diff));
      } catch {
        /* config gone: nothing to learn */
      }
    }
    for (const dir of mountedLowerDirs(layersDir)) keep.add(dir);
    const layers: string[] = [];
    const doomed: string[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(layersDir);
    } catch {
      /* no layers yet */
    }
    for (const name of names) {
      if (!/^[a-f0-9]{64}$/.test(name) || keep.has(name)) continue;
      const from = join(layersDir, name);
      reclaimed += treeSize(from);
      const to = this.s.layerTemp.path('.gc');
      renameSync(from, to);
      doomed.push(to);
      layers.push(`sha256:${name}`);
    }
    return { result: { blobs, layers, reclaimed }, doomed };
  }

  /** Delete what collectLocked renamed away (after the lock is released). */
  async deleteDoomed(paths: string[]): Promise<void> {
    for (const p of paths) await rm(p, { recursive: true, force: true });
  }

  private blobDigests(): string[] {
    try {
      return readdirSync(join(this.s.imagesDir, 'blobs', 'sha256'))
        .filter((n) => /^[a-f0-9]{64}$/.test(n))
        .map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }

  private blobSize(digest: string): number {
    try {
      return statSync(this.s.layout.blobPath(digest)).size;
    } catch {
      return 0;
    }
  }
}

/** Hex names of the layer directories under `layersDir` that an overlay mount uses as a lower directory now. */
function mountedLowerDirs(layersDir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  const prefix = layersDir + '/';
  for (const line of info.split('\n')) {
    const m = /\blowerdir=([^,\s]+)/.exec(line);
    if (!m) continue;
    for (const dir of m[1]!.split(':')) {
      if (dir.startsWith(prefix)) out.push(dir.slice(prefix.length).split('/')[0]!);
    }
  }
  return out;
}
