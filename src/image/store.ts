/**
 * ImageStore: hull's local images, kept as an OCI image layout in `<root>/images` (see layout.ts) with
 * each layer extracted once into `<root>/layers/<diffID hex>/` (see unpack.ts). This class is the facade
 * the engine uses; each concern is a part in src/image/store/:
 *
 *   names.ts      names and the index: resolve, tag, untag (rmi), list; image records from blobs
 *   commit.ts     images and layers entering the store: pulls and loads, builds, imports, the built-in image
 *   layers.ts     extracted layer directories (extracted once, on first use)
 *   downloads.ts  partial downloads and their owners (pull's claims, resumes, takeovers)
 *   gc.ts         garbage collection: prune, leases, images in use, unreferenced blobs and layers
 *   parts.ts      what they share: the directories and the OciLayout
 *
 * `remove` and `prune` take images out of the index and collect the garbage: blobs nothing references any
 * more and extracted layer directories of no remaining image (gc.ts says what is kept, and why it is safe
 * against other hull processes).
 *
 * Reads take no lock: index.json is replaced atomically and blobs never change. Writes go
 * through OciLayout.withLock. Resolving an existing image reads index.json and two small JSON
 * blobs and hashes nothing (blobs were verified when written; layers are verified when
 * extracted).
 */
import type { TempBlob } from './layout.js';
import type { Lease } from './lease.js';
import type { ImageReference } from './reference.js';
import type { OciImageConfigFile, OciManifest } from './types.js';
import { ImageCommits, type ImportChanges } from './store/commit.js';
import { Downloads } from './store/downloads.js';
import { ImageGc, type GcResult } from './store/gc.js';
import { LayerDirs } from './store/layers.js';
import { ImageNames, nameForWrite, type ImageRecord } from './store/names.js';
import { StoreParts } from './store/parts.js';

export type { OciImageConfigFile } from './types.js';
export { parseReference } from './reference.js';
export type { ImageRecord } from './store/names.js';
export type { ImportChanges } from './store/commit.js';
export type { GcResult } from './store/gc.js';
export { PARTIAL_MAX_AGE_MS } from './store/downloads.js';

/** Options of {@link ImageStore}. */
export interface ImageStoreOptions {
  /**
   * Told about things worth a line on stderr that do not stop the operation: layer entries
   * skipped for safety (device nodes, paths leaving the layer), images list() cannot read.
   */
  onWarning?: (message: string) => void;
}

/** hull's local images: names, configs, layer blobs and extracted layers (see the file comment). */
export class ImageStore {
  readonly imagesDir: string;
  readonly layersDir: string;
  private readonly s: StoreParts;
  private readonly names: ImageNames;
  private readonly commits: ImageCommits;
  private readonly layers: LayerDirs;
  private readonly downloads: Downloads;
  private readonly gc: ImageGc;

  /** @param root hull's root directory; the store lives in `<root>/images` and `<root>/layers` */
  constructor(
    readonly root: string,
    opts: ImageStoreOptions = {},
  ) {
    this.s = new StoreParts(
      root,
      opts.onWarning ??
        (() => {
          /* quiet unless asked */
        }),
    );
    this.imagesDir = this.s.imagesDir;
    this.layersDir = this.s.layersDir;
    this.names = new ImageNames(this.s);
    this.commits = new ImageCommits(this.s, this.names);
    this.layers = new LayerDirs(this.s);
    this.downloads = new Downloads(this.s);
    this.gc = new ImageGc(this.s, this.names, this.downloads);
  }

  // ---- names and the index (store/names.ts)

  /**
   * Find an image by name[:tag], name@digest, full id (`sha256:<hex>`) or unique id prefix
   * (3+ hex digits). `busybox` / `busybox:latest` is built from the host when absent.
   */
  async resolve(ref: string): Promise<ImageRecord> {
    const found = this.names.lookup(ref);
    if (found.record) return found.record;
    if (found.builtin) return this.commits.ensureBuiltin('busybox');
    throw this.names.notFound(ref);
  }

  /**
   * Every image in the store, one record per manifest, in index order. An entry whose blobs
   * cannot be read is left out (and reported through onWarning); rmi can still remove it.
   */
  async list(): Promise<ImageRecord[]> {
    return this.names.list();
  }

  /** Give the image `src` resolves to the name `ref` (moving the name if another image had it). */
  async tag(src: string, ref: string): Promise<void> {
    const target = nameForWrite(ref);
    const image = await this.resolve(src);
    await this.s.layout.withLock(() => this.names.tagLocked(image.manifestDigest, src, target));
  }

  /** `remove` under the name docker's API uses for it. */
  untag(ref: string, opts: { force?: boolean } = {}): Promise<string[]> {
    return this.remove(ref, opts);
  }

  /**
   * rmi: by name, remove that name; by id, remove the image's names (several only with
   * `force`). An image left without names leaves the index, and blobs that no remaining
   * image references are deleted. Returns docker-style lines (`Untagged: ...`, `Deleted: ...`).
   */
  async remove(ref: string, opts: { force?: boolean; inUse?: () => Set<string> } = {}): Promise<string[]> {
    const doomed: string[] = [];
    const lines = await this.s.layout.withLock(() => {
      const lines = this.names.removeLocked(ref, opts);
      doomed.push(...this.gc.collectLocked(new Set()).doomed);
      return lines;
    });
    await this.gc.deleteDoomed(doomed);
    return lines;
  }

  /** An image's stored manifest, byte for byte, with its media type (for push and save). */
  async manifestOf(
    ref: string,
  ): Promise<{ record: ImageRecord; manifest: OciManifest; bytes: Buffer; mediaType: string }> {
    return this.names.manifestOf(await this.resolve(ref));
  }

  // ---- commits (store/commit.ts)

  /**
   * Make an image from a root filesystem tarball (plain, gzip or zstd, detected from its first
   * bytes; `-` reads stdin), like `docker import`. The tarball becomes the image's only layer
   * as it is; `ref` names it (an older image of that name keeps existing without the name).
   */
  importTar(
    tarPath: string | '-',
    ref: string,
    opts: { message?: string; changes?: ImportChanges } = {},
  ): Promise<ImageRecord> {
    return this.commits.importTar(tarPath, ref, opts);
  }

  /** Build (or rebuild, getting the same id) the built-in busybox image and name it busybox:latest. */
  ensureBuiltin(name: 'busybox'): Promise<ImageRecord> {
    return this.commits.ensureBuiltin(name);
  }

  /** A pulled (or loaded) image, in one step under the store lock (store/commit.ts). */
  commitPulled(
    ref: ImageReference | null,
    p: { manifest: Buffer; mediaType: string; config: Buffer; layers: TempBlob[] },
  ): Promise<ImageRecord> {
    return this.commits.commitPulled(ref, p);
  }

  /** `hull build`: a layer made by the builder, committed at once, in no image until {@link commitBuilt}. */
  putBuiltLayer(source: AsyncIterable<Uint8Array | string>, lease?: Lease): Promise<{ digest: string; size: number }> {
    return this.commits.putBuiltLayer(source, lease);
  }

  /** `hull build`: a built image over layers already in the store, with every name in `refs`. */
  commitBuilt(
    config: OciImageConfigFile,
    layers: { digest: string; size: number; mediaType: string }[],
    refs: string[],
  ): Promise<ImageRecord> {
    return this.commits.commitBuilt(config, layers, refs);
  }

  /** Whether the store holds the blob (for pulls: layers already there are not downloaded again). */
  hasBlob(digest: string): boolean {
    return this.s.layout.hasBlob(digest);
  }

  /** A fresh scratch path on the store's file system (removed when its process is gone). */
  tempPath(suffix = ''): string {
    return this.s.layout.temp.path(suffix);
  }

  /** Path of a stored blob, for reading (blobs are immutable once stored). */
  blobPath(digest: string): string {
    return this.s.layout.blobPath(digest);
  }

  /**
   * Stream a blob into the store's temp area, verifying `expected` when given (IntegrityError
   * and nothing left behind on a mismatch). It becomes visible only through {@link commitPulled}.
   */
  writeTempBlob(source: AsyncIterable<Uint8Array | string>, expected?: string): Promise<TempBlob> {
    return this.s.layout.writeTempBlob(source, expected);
  }

  /** Drop a temp blob that will not be committed. */
  discardTemp(blob: TempBlob): Promise<void> {
    return this.s.layout.discardTemp(blob);
  }

  // ---- extracted layers (store/layers.ts)

  /**
   * The image's extracted layer directories, lowest first, extracting those that are
   * missing (digest and diffID are verified while extracting: IntegrityError on a mismatch,
   * and nothing is left behind). Already extracted layers cost one stat each.
   */
  layerDirs(image: ImageRecord): Promise<string[]> {
    return this.layers.of(image);
  }

  // ---- downloads (store/downloads.ts)

  /** Where the partial download of `digest` lives (outside blobs/: never taken for a blob). */
  partialPath(digest: string): string {
    return this.downloads.partialPath(digest);
  }

  /** Claim the download of a blob under the store lock: 'stored', 'mine' or 'busy' (store/downloads.ts). */
  claimDownload(digest: string, lease: Lease, token: string): Promise<'stored' | 'mine' | 'busy'> {
    return this.downloads.claim(digest, lease, token);
  }

  /** The pid of the live process downloading `digest`, if any. */
  downloadOwner(digest: string): number | undefined {
    return this.downloads.owner(digest);
  }

  /** Without the lock: whether a claim would now end differently from 'busy' (the blob came, or its owner is gone). */
  downloadSettled(digest: string): boolean {
    return this.downloads.settled(digest);
  }

  /** Bytes of the partial download of `digest` so far (0 when there is none). */
  partialSize(digest: string): number {
    return this.downloads.partialSize(digest);
  }

  /** A finished, verified download becomes a blob, in `lease`, and the claim ends; one step under the lock. */
  commitDownload(digest: string, size: number, lease: Lease, token: string): Promise<void> {
    return this.downloads.commit(digest, size, lease, token);
  }

  /** End a claim without a blob, keeping the partial for a resume or removing it. */
  releaseDownload(digest: string, token: string, keepPartial: boolean): void {
    this.downloads.release(digest, token, keepPartial);
  }

  // ---- garbage collection (store/gc.ts)

  /**
   * `hull image prune`: remove dangling images (with `all`, every image) that no instance uses
   * (`inUse` gives their ids; it is called under the store lock), then collect the garbage.
   * Returns the removed images' ids and what was freed.
   */
  prune(opts: { all?: boolean; inUse: () => Set<string> }): Promise<{ images: string[]; gc: GcResult }> {
    return this.gc.prune(opts);
  }

  /** Collect the garbage only (no image is removed). */
  collect(inUse: () => Set<string>): Promise<GcResult> {
    return this.gc.collect(inUse);
  }

  /** A lease for an operation in progress: what it retains survives garbage collection until release. */
  lease(): Lease {
    return this.gc.lease();
  }

  /** Retain an image's config and layers in `lease`, checked under the lock (NotFoundError when one is gone). */
  retain(lease: Lease, configDigest: string | null, layers: { digest: string; diffId: string }[]): Promise<void> {
    return this.gc.retain(lease, configDigest, layers);
  }

  /**
   * Run `record` (which records an instance of `image`) under the store lock, after checking that the
   * image is still complete: an image is either seen in use by a collector or reported gone here.
   */
  useImage<T>(image: ImageRecord, record: () => T): Promise<T> {
    return this.gc.useImage(image, record);
  }

  /** Close the lock database. The store stays usable. */
  close(): void {
    this.s.layout.close();
  }
}
