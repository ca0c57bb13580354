/**
 * ImageStore: hull's local images, kept as an OCI image layout in `<root>/images` (see
 * layout.ts) with each layer extracted once into `<root>/layers/<diffID hex>/` (see unpack.ts).
 *
 * Names: index.json has one descriptor per name, annotated with
 * `org.opencontainers.image.ref.name` = the full normalized reference
 * (`docker.io/library/busybox:latest`, see reference.ts). An image that loses its last name to
 * a newer image (import or tag over an existing name) stays in the index as a descriptor
 * without a name (docker's dangling `<none>` image), so instances made from it keep working;
 * `remove` and `prune` take images out of the index and collect the garbage: blobs nothing
 * references any more and extracted layer directories of no remaining image.
 *
 * Garbage collection is safe against concurrent use by other hull processes: it runs under the
 * store lock and keeps (1) everything the index reaches, (2) every ref of a live lease (an
 * operation in progress, such as a build, see lease.ts), (3) images the caller names as in use
 * (the engine passes the images of its instances, read under the same lock), and (4) layer
 * directories mounted as an overlay lower directory right now. An instance is recorded under
 * the lock too ({@link ImageStore.useImage}), so a collector sees either the instance or an
 * image it may delete, which the creator then reports as gone instead of running without it.
 * Doomed layer directories are renamed away under the lock and deleted after it.
 *
 * Downloads (pull) go through `<root>/images/.downloads/`: `<hex>.part` is the partial blob (kept after a
 * failure or an interrupt when the registry takes range requests, so the next pull resumes it) and
 * `<hex>.owner` names the process downloading it (pid, start time, a per-task token). A second puller
 * of the same blob sees a live owner and waits for the blob to arrive in blobs/; an owner that died
 * (kill -9) is taken over, partial included. Claims and commits happen under the store lock. Partials
 * are never blobs: a finished one is verified against its digest, then renamed into blobs/. GC removes
 * owner files of dead processes and partials nobody owns that are older than an hour (all of them with
 * `image prune --all`).
 *
 * Reads take no lock: index.json is replaced atomically and blobs never change. Writes go
 * through OciLayout.withLock. Resolving an existing image reads index.json and two small JSON
 * blobs and hashes nothing (blobs were verified when written; layers are verified when
 * extracted).
 */
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConflictError, InvalidArgumentError, IntegrityError, NotFoundError } from '../common/errors.js';
import { digestHex, OciLayout, sha256, TempArea, type TempBlob } from './layout.js';
import { Lease, liveLeaseRefs } from './lease.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { processAlive, processStartTime } from '../host/proc.js';
import { looksLikeId, parseReference, shortName, type ImageReference } from './reference.js';
import { MEDIA_TYPE, REF_NAME_ANNOTATION, hostArchitecture, type Descriptor, type OciImageConfigFile, type OciIndex, type OciManifest } from './types.js';
// The tar code (busybox.ts, unpack.ts) loads on first use: most commands never touch a tarball, and
// loading it costs about 20 ms of every hull invocation's start-up.
const loadUnpack = () => import('./unpack.js');
const loadBusybox = () => import('./busybox.js');

export type { OciImageConfigFile } from './types.js';
export { parseReference } from './reference.js';

/** One local image: a manifest in the index, its config, its names. */
export interface ImageRecord {
  /** `sha256:<hex>` digest of the image config blob */
  id: string;
  manifestDigest: string;
  /** display forms of the names that point at it (`busybox:latest`); empty for a dangling image */
  names: string[];
  /** the parsed config blob */
  config: OciImageConfigFile;
  /** ISO time from the config (`1970-01-01T00:00:00Z` for the built-in image) */
  created: string;
  /** sum of the layer blob sizes */
  size: number;
  /** lowest layer first */
  layers: { digest: string; diffId: string; size: number; mediaType: string }[];
}

/** Changes applied to the config of an imported image (`hull import -c`). */
export interface ImportChanges {
  cmd?: string[];
  env?: string[];
  entrypoint?: string[];
  workdir?: string;
}

const BUILTIN = 'docker.io/library/busybox:latest';

/** The name annotation of an index descriptor, if any. */
function refName(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME_ANNOTATION];
}

/** Display form of a stored full name (`docker.io/library/busybox:latest` → `busybox:latest`). */
function displayName(full: string): string {
  const at = full.indexOf('@');
  const repoTag = at >= 0 ? full.slice(0, at) : full;
  const colon = repoTag.lastIndexOf(':');
  const repo = colon > repoTag.lastIndexOf('/') ? repoTag.slice(0, colon) : repoTag;
  return shortName(repo) + full.slice(repo.length);
}

/** Repository part of a stored full name (no tag, no digest); undefined when the name is malformed. */
function repositoryOf(full: string): string | undefined {
  try {
    return parseReference(full).name;
  } catch {
    return undefined;
  }
}

/** Where a lookup landed: the manifest, and the name it matched (absent for an id match). */
interface Match {
  digest: string;
  name?: string;
}

/** What a prune or remove collected. */
export interface GcResult {
  /** blob digests deleted */
  blobs: string[];
  /** extracted layer directories deleted (diffIDs) */
  layers: string[];
  /** bytes freed (blobs plus extracted files) */
  reclaimed: number;
}

/** Partials nobody downloads are kept this long for a resume, then `image prune` removes them. */
export const PARTIAL_MAX_AGE_MS = 60 * 60 * 1000;

interface DownloadOwner { pid: number; start: string; token: string }

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
  private readonly layout: OciLayout;
  private readonly layerTemp: TempArea;
  /** extractions running in this process, by diffID, so parallel callers share one */
  private readonly unpacking = new Map<string, Promise<void>>();

  private readonly warn: (message: string) => void;

  /** @param root hull's root directory; the store lives in `<root>/images` and `<root>/layers` */
  constructor(readonly root: string, opts: ImageStoreOptions = {}) {
    this.warn = opts.onWarning ?? (() => { /* quiet unless asked */ });
    this.imagesDir = join(root, 'images');
    this.layersDir = join(root, 'layers');
    this.layout = new OciLayout(this.imagesDir);
    this.layerTemp = new TempArea(join(this.layersDir, '.tmp'));
  }

  /**
   * Find an image by name[:tag], name@digest, full id (`sha256:<hex>`) or unique id prefix
   * (3+ hex digits). `busybox` / `busybox:latest` is built from the host when absent.
   */
  async resolve(ref: string): Promise<ImageRecord> {
    const index = this.layout.readIndex();
    const match = this.find(index, ref);
    if (match) return this.record(index, match.digest);
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (!looksLikeId(ref)) throw e;
    }
    if (parsed?.full === BUILTIN) return this.ensureBuiltin('busybox');
    const hint = parsed && !looksLikeId(ref) ? `hull import FILE ${ref} creates it; ` : '';
    throw new NotFoundError(`image not found: ${ref} (${hint}hull images lists the images there are)`);
  }

  /**
   * Every image in the store, one record per manifest, in index order. An entry whose blobs
   * cannot be read is left out (and reported through onWarning); rmi can still remove it.
   */
  async list(): Promise<ImageRecord[]> {
    const index = this.layout.readIndex();
    const seen = new Set<string>();
    const out: ImageRecord[] = [];
    for (const d of index.manifests) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      try {
        out.push(this.record(index, d.digest));
      } catch (e) {
        this.warn(`skipping image ${refName(d) ?? d.digest}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Make an image from a root filesystem tarball (plain, gzip or zstd, detected from its first
   * bytes; `-` reads stdin), like `docker import`. The tarball becomes the image's only layer
   * as it is; `ref` names it (an older image of that name keeps existing without the name).
   */
  async importTar(tarPath: string | '-', ref: string, opts: { message?: string; changes?: ImportChanges } = {}): Promise<ImageRecord> {
    const target = this.nameForWrite(ref);
    let source: AsyncIterable<Buffer>;
    if (tarPath === '-') {
      source = process.stdin;
    } else {
      const st = statSync(tarPath, { throwIfNoEntry: false });
      if (!st) throw new NotFoundError(`cannot import ${tarPath}: no such file`);
      if (st.isDirectory()) throw new InvalidArgumentError(`cannot import ${tarPath}: it is a directory; give a tar archive of it (tar -C DIR -c .)`);
      source = createReadStream(tarPath, { highWaterMark: 1 << 20 });
    }
    const blob = await this.layout.writeTempBlob(source);
    try {
      let scan;
      try {
        const { scanLayer } = await loadUnpack();
        scan = await scanLayer(blob.path);
      } catch (e) {
        if (e instanceof (await loadUnpack()).TarFormatError) {
          throw new InvalidArgumentError(`cannot import ${tarPath === '-' ? 'stdin' : tarPath}: not a tar archive (plain, gzip or zstd): ${e.message}`);
        }
        throw e;
      }
      const created = new Date().toISOString();
      const c = opts.changes ?? {};
      const config: OciImageConfigFile = {
        created,
        architecture: hostArchitecture(),
        os: 'linux',
        config: {
          ...(c.env ? { Env: c.env } : {}),
          ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
          ...(c.cmd ? { Cmd: c.cmd } : {}),
          ...(c.workdir ? { WorkingDir: c.workdir } : {}),
        },
        rootfs: { type: 'layers', diff_ids: [scan.diffId] },
        history: [{
          created,
          created_by: 'hull import',
          comment: opts.message ?? `imported from ${tarPath === '-' ? 'stdin' : basename(tarPath)}`,
        }],
      };
      const mediaType = scan.compression === 'gzip' ? MEDIA_TYPE.layerGzip : scan.compression === 'zstd' ? MEDIA_TYPE.layerZstd : MEDIA_TYPE.layer;
      return await this.commitImage(blob, mediaType, config, target);
    } finally {
      await this.layout.discardTemp(blob);
    }
  }

  /** Give the image `src` resolves to the name `ref` (moving the name if another image had it). */
  async tag(src: string, ref: string): Promise<void> {
    const target = this.nameForWrite(ref);
    const image = await this.resolve(src);
    await this.layout.withLock(() => {
      const index = this.layout.readIndex();
      const current = index.manifests.find((d) => d.digest === image.manifestDigest);
      if (!current) throw new NotFoundError(`image not found: ${src} (it was removed meanwhile)`);
      this.setName(index, target.full, current);
      this.layout.writeIndex(index);
    });
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
    const lines = await this.layout.withLock(() => {
      const index = this.layout.readIndex();
      const match = this.find(index, ref);
      if (!match) throw new NotFoundError(`image not found: ${ref} (hull images lists the images there are)`);
      const lines: string[] = [];
      const image = this.recordOrStub(index, match.digest);
      if (match.name !== undefined) {
        index.manifests = index.manifests.filter((d) => !(d.digest === match.digest && refName(d) === match.name));
        lines.push(`Untagged: ${displayName(match.name)}`);
        // a name was the last one: drop the image rather than keep it dangling
        if (!index.manifests.some((d) => d.digest === match.digest && refName(d) !== undefined)) {
          index.manifests = index.manifests.filter((d) => d.digest !== match.digest);
        }
      } else {
        if (image.names.length > 1 && !opts.force) {
          throw new ConflictError(`image ${ref} has several names (${image.names.join(', ')}): remove them one by one, or use --force to remove all`);
        }
        for (const n of image.names) lines.push(`Untagged: ${n}`);
        index.manifests = index.manifests.filter((d) => d.digest !== match.digest);
      }
      const gone = !index.manifests.some((d) => d.digest === match.digest);
      if (gone && opts.inUse?.().has(image.id)) {
        // an instance still uses it (rmi -f): it loses its names but stays, dangling, as docker does
        const desc = this.layout.readIndex().manifests.find((d) => d.digest === match.digest)!;
        const { annotations: _names, ...dangling } = desc;
        index.manifests.push(dangling);
      } else if (gone) {
        lines.push(`Deleted: ${image.id}`);
      }
      this.layout.writeIndex(index);
      doomed.push(...this.collectLocked(new Set()).doomed);
      return lines;
    });
    await this.deleteDoomed(doomed);
    return lines;
  }

  /**
   * `hull image prune`: remove dangling images (with `all`, every image) that no instance uses
   * (`inUse` gives their ids; it is called under the store lock), then collect the garbage.
   * Returns the removed images' ids and what was freed.
   */
  async prune(opts: { all?: boolean; inUse: () => Set<string> }): Promise<{ images: string[]; gc: GcResult }> {
    let doomed: string[] = [];
    const result = await this.layout.withLock(() => {
      const used = opts.inUse();
      const index = this.layout.readIndex();
      const removed = new Set<string>();
      const keepDigests = new Set<string>();
      for (const d of index.manifests) {
        const id = this.recordOrStub(index, d.digest).id;
        if (used.has(id) || (!opts.all && refName(d) !== undefined)) keepDigests.add(d.digest);
      }
      index.manifests = index.manifests.filter((d) => {
        if (keepDigests.has(d.digest)) return true;
        removed.add(this.recordOrStub(index, d.digest).id);
        return false;
      });
      if (removed.size) this.layout.writeIndex(index);
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
    const result = await this.layout.withLock(() => {
      const gc = this.collectLocked(inUse());
      doomed = gc.doomed;
      return gc.result;
    });
    await this.deleteDoomed(doomed);
    return result;
  }

  /** A lease for an operation in progress: what it retains survives garbage collection until release. */
  lease(): Lease {
    return new Lease(join(this.imagesDir, '.leases'));
  }

  /**
   * Retain an image's config and layers (blobs and extracted directories) in `lease`, after checking under
   * the lock that they are all still there. NotFoundError when a collector removed one since.
   */
  async retain(lease: Lease, configDigest: string | null, layers: { digest: string; diffId: string }[]): Promise<void> {
    await this.layout.withLock(() => {
      const missing = [...(configDigest ? [configDigest] : []), ...layers.map((l) => l.digest)].find((d) => !this.layout.hasBlob(d));
      if (missing) throw new NotFoundError(`blob ${missing.slice(0, 19)} left the image store meanwhile (hull rmi or image prune in another process)`);
      lease.add([...(configDigest ? [configDigest] : []), ...layers.flatMap((l) => [l.digest, l.diffId])]);
    });
  }

  /**
   * Run `record` (which records an instance of `image`) under the store lock, after checking that the
   * image is still complete: with {@link prune} taking the same lock and reading the instances, an image
   * is either seen in use or reported gone here, never deleted under a new instance.
   */
  async useImage<T>(image: ImageRecord, record: () => T): Promise<T> {
    return this.layout.withLock(() => {
      this.assertComplete(image);
      return record();
    });
  }

  private assertComplete(image: ImageRecord): void {
    const missing = [image.id, ...image.layers.map((l) => l.digest)].find((d) => !this.layout.hasBlob(d));
    if (missing) {
      const name = image.names[0] ?? image.id.slice(7, 19);
      throw new NotFoundError(`image ${name} was removed meanwhile (blob ${missing.slice(0, 19)} is gone: hull rmi or image prune in another process); pull or build it again`);
    }
  }

  /**
   * Garbage collection, under the lock: delete unreferenced blobs, and rename extracted layer directories
   * no remaining image, lease, in-use image or overlay mount needs into the temp area (returned as
   * `doomed`, for deleteDoomed once the lock is released).
   */
  private collectLocked(used: Set<string>, partialMaxAgeMs = PARTIAL_MAX_AGE_MS): { result: GcResult; doomed: string[] } {
    const leased = liveLeaseRefs(join(this.imagesDir, '.leases'));
    const sizes = new Map<string, number>();
    for (const d of this.blobDigests()) sizes.set(d, this.blobSize(d));
    const blobs = this.layout.deleteUnreferencedBlobs(leased);
    let reclaimed = blobs.reduce((sum, d) => sum + (sizes.get(d) ?? 0), 0) + this.collectPartials(partialMaxAgeMs);
    const keep = new Set<string>([...leased].filter((r) => r.startsWith('sha256:')).map((r) => r.slice(7)));
    const index = this.layout.readIndex();
    for (const d of index.manifests) {
      try {
        for (const l of this.record(index, d.digest).layers) keep.add(digestHex(l.diffId));
      } catch { /* unreadable entry: reaches nothing */ }
    }
    for (const id of used) {
      // an instance's image that left the index (created before leases existed): keep what its config names
      try {
        const cfg = this.layout.readJson<OciImageConfigFile>(id);
        for (const diff of cfg?.rootfs?.diff_ids ?? []) keep.add(digestHex(diff));
      } catch { /* config gone: nothing to learn */ }
    }
    for (const dir of mountedLowerDirs(this.layersDir)) keep.add(dir);
    const layers: string[] = [];
    const doomed: string[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.layersDir);
    } catch { /* no layers yet */ }
    for (const name of names) {
      if (!/^[a-f0-9]{64}$/.test(name) || keep.has(name)) continue;
      const from = join(this.layersDir, name);
      reclaimed += treeSize(from);
      const to = this.layerTemp.path('.gc');
      renameSync(from, to);
      doomed.push(to);
      layers.push(`sha256:${name}`);
    }
    return { result: { blobs, layers, reclaimed }, doomed };
  }

  private async deleteDoomed(paths: string[]): Promise<void> {
    for (const p of paths) await rm(p, { recursive: true, force: true });
  }

  private blobDigests(): string[] {
    try {
      return readdirSync(join(this.imagesDir, 'blobs', 'sha256')).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }

  private blobSize(digest: string): number {
    try {
      return statSync(this.layout.blobPath(digest)).size;
    } catch {
      return 0;
    }
  }

  /**
   * The image's extracted layer directories, lowest first, extracting those that are
   * missing (digest and diffID are verified while extracting: IntegrityError on a mismatch,
   * and nothing is left behind). Already extracted layers cost one stat each.
   */
  async layerDirs(image: ImageRecord): Promise<string[]> {
    const dirs: string[] = [];
    for (const layer of image.layers) {
      const dir = join(this.layersDir, digestHex(layer.diffId));
      if (!existsSync(dir)) await this.unpack(layer, dir);
      dirs.push(dir);
    }
    return dirs;
  }

  /** Build (or rebuild, getting the same id) the built-in busybox image and name it busybox:latest. */
  async ensureBuiltin(name: 'busybox'): Promise<ImageRecord> {
    if (name !== 'busybox') throw new InvalidArgumentError(`unknown built-in image "${name as string}": only busybox is built in`);
    const { busyboxConfig, inspectBusybox, packRootfs, writeBusyboxRootfs } = await loadBusybox();
    const bin = await inspectBusybox();
    const work = this.layout.temp.path('.rootfs');
    let blob: TempBlob | undefined;
    try {
      const paths = writeBusyboxRootfs(work, bin);
      blob = await this.layout.writeTempBlob(packRootfs(work, paths));
      // uncompressed layer: its digest is its diffID
      return await this.commitImage(blob, MEDIA_TYPE.layer, busyboxConfig(blob.digest, bin), parseReference(BUILTIN));
    } finally {
      await rm(work, { recursive: true, force: true });
      if (blob) await this.layout.discardTemp(blob);
    }
  }

  private get downloadsDir(): string {
    return join(this.imagesDir, '.downloads');
  }

  /** Where the partial download of `digest` lives (outside blobs/: never taken for a blob). */
  partialPath(digest: string): string {
    return join(this.downloadsDir, `${digestHex(digest)}.part`);
  }

  private ownerPath(digest: string): string {
    return join(this.downloadsDir, `${digestHex(digest)}.owner`);
  }

  /** The live owner of a download, or undefined when there is none (no file, or its process is gone). */
  private liveOwner(digest: string): DownloadOwner | undefined {
    let owner: DownloadOwner;
    try {
      owner = JSON.parse(readFileSync(this.ownerPath(digest), 'utf8')) as DownloadOwner;
    } catch {
      return undefined;
    }
    // pid and start time name the process; a zombie (killed, not reaped yet) is gone too
    return owner.start && processStartTime(owner.pid) === owner.start && processAlive(owner.pid) ? owner : undefined;
  }

  /**
   * Claim the download of a blob, under the store lock: 'stored' when the store has it (it is added to
   * `lease`, so no collector takes it before the pull commits), 'mine' when this task now owns the download
   * (no owner, or a dead one: its partial is this task's to resume), 'busy' while another live task owns it.
   */
  async claimDownload(digest: string, lease: Lease, token: string): Promise<'stored' | 'mine' | 'busy'> {
    return this.layout.withLock(() => {
      const owner = this.liveOwner(digest);
      if (this.layout.hasBlob(digest)) {
        lease.add([digest]);
        if (!owner) rmSync(this.ownerPath(digest), { force: true }); // a claim its process left (killed while committing)
        return 'stored';
      }
      if (owner && owner.token !== token) return 'busy';
      mkdirSync(this.downloadsDir, { recursive: true, mode: 0o700 });
      const me: DownloadOwner = { pid: process.pid, start: processStartTime(process.pid) ?? '', token };
      writeFileAtomic(this.ownerPath(digest), JSON.stringify(me));
      return 'mine';
    });
  }

  /** The pid of the live process downloading `digest`, if any. */
  downloadOwner(digest: string): number | undefined {
    return this.liveOwner(digest)?.pid;
  }

  /** Without the lock: whether a claim would now end differently from 'busy' (the blob came, or its owner is gone). */
  downloadSettled(digest: string): boolean {
    return this.layout.hasBlob(digest) || !this.liveOwner(digest);
  }

  /** Bytes of the partial download of `digest` so far (0 when there is none). */
  partialSize(digest: string): number {
    try {
      return statSync(this.partialPath(digest)).size;
    } catch {
      return 0;
    }
  }

  /**
   * A finished download (its partial, verified against `digest` by the caller) becomes a blob, in `lease`,
   * and the claim ends; one step under the lock.
   */
  async commitDownload(digest: string, size: number, lease: Lease, token: string): Promise<void> {
    await this.layout.withLock(() => {
      // the claim goes first: a kill between the two leaves an unowned, complete partial (the next pull checks and
      // commits it without fetching), never a stored blob with a claim on it
      if (this.liveOwner(digest)?.token === token) rmSync(this.ownerPath(digest), { force: true });
      this.layout.commitBlob({ path: this.partialPath(digest), digest, size });
      lease.add([digest]);
    });
  }

  /** End a claim without a blob, keeping the partial for a resume or removing it. */
  releaseDownload(digest: string, token: string, keepPartial: boolean): void {
    if (!keepPartial) rmSync(this.partialPath(digest), { force: true });
    if (this.liveOwner(digest)?.token === token) rmSync(this.ownerPath(digest), { force: true });
  }

  /** Under the lock: drop owner files of dead processes and unowned partials older than `maxAgeMs`. Returns bytes freed. */
  private collectPartials(maxAgeMs: number): number {
    let names: string[];
    try {
      names = readdirSync(this.downloadsDir);
    } catch {
      return 0;
    }
    let freed = 0;
    const now = Date.now();
    for (const name of names) {
      const m = /^([a-f0-9]{64})\.(part|owner)$/.exec(name);
      if (!m) continue;
      const digest = `sha256:${m[1]}`;
      if (this.liveOwner(digest)) continue;
      const path = join(this.downloadsDir, name);
      if (m[2] === 'owner') {
        rmSync(path, { force: true });
        continue;
      }
      try {
        const st = statSync(path);
        if (now - st.mtimeMs < maxAgeMs) continue;
        rmSync(path, { force: true });
        freed += st.size;
      } catch { /* gone meanwhile */ }
    }
    return freed;
  }

  /** Whether the store holds the blob (for pulls: layers already there are not downloaded again). */
  hasBlob(digest: string): boolean {
    return this.layout.hasBlob(digest);
  }

  /** A fresh scratch path on the store's file system (removed when its process is gone). */
  tempPath(suffix = ''): string {
    return this.layout.temp.path(suffix);
  }

  /** Path of a stored blob, for reading (blobs are immutable once stored). */
  blobPath(digest: string): string {
    return this.layout.blobPath(digest);
  }

  /**
   * Stream a blob into the store's temp area, verifying `expected` when given (IntegrityError
   * and nothing left behind on a mismatch). It becomes visible only through {@link commitPulled}.
   */
  writeTempBlob(source: AsyncIterable<Uint8Array | string>, expected?: string): Promise<TempBlob> {
    return this.layout.writeTempBlob(source, expected);
  }

  /** Drop a temp blob that will not be committed. */
  discardTemp(blob: TempBlob): Promise<void> {
    return this.layout.discardTemp(blob);
  }

  /**
   * Commit a pulled (or loaded) image in one step under the store lock: the layer temp blobs,
   * the config and the manifest (both kept byte for byte, so the manifest digest stays the
   * registry's), then the name. Layers not in `layers` must already be in the store. Before
   * anything is written, the manifest, config and layer set are checked against each other,
   * so a failed commit leaves nothing new visible.
   */
  async commitPulled(ref: ImageReference | null, p: { manifest: Buffer; mediaType: string; config: Buffer; layers: TempBlob[] }): Promise<ImageRecord> {
    const what = ref?.display ?? 'the image';
    const manifest = JSON.parse(p.manifest.toString('utf8')) as OciManifest;
    const config = JSON.parse(p.config.toString('utf8')) as OciImageConfigFile;
    if (!manifest?.config || !Array.isArray(manifest.layers)) throw new IntegrityError(`the manifest of ${what} is not an image manifest`);
    if (sha256(p.config) !== manifest.config.digest) throw new IntegrityError(`the config of ${what} does not match its manifest (expected ${manifest.config.digest}, got ${sha256(p.config)})`);
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new IntegrityError(`image ${what} is inconsistent: its config lists ${diffIds?.length ?? 0} layers, its manifest ${manifest.layers.length}`);
    }
    for (const d of [...diffIds, ...manifest.layers.map((l) => l.digest)]) digestHex(d);
    const temps = new Map(p.layers.map((b) => [b.digest, b]));
    const digest = await this.layout.withLock(() => {
      const missing = manifest.layers.find((l) => !temps.has(l.digest) && !this.layout.hasBlob(l.digest));
      if (missing) throw new IntegrityError(`layer ${missing.digest} of ${what} left the store while pulling (removed by another hull?); pull again`);
      for (const b of temps.values()) this.layout.commitBlob(b);
      this.layout.putBlob(p.config);
      const m = this.layout.putBlob(p.manifest);
      const index = this.layout.readIndex();
      const desc: Descriptor = {
        mediaType: p.mediaType,
        digest: m.digest,
        size: m.size,
        platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
      };
      if (ref) this.setName(index, ref.full, desc);
      else if (!index.manifests.some((d) => d.digest === m.digest)) index.manifests.push(desc);
      this.layout.writeIndex(index);
      return m.digest;
    });
    return this.record(this.layout.readIndex(), digest);
  }

  /** An image's stored manifest, byte for byte, with its media type (for push and save). */
  async manifestOf(ref: string): Promise<{ record: ImageRecord; manifest: OciManifest; bytes: Buffer; mediaType: string }> {
    const record = await this.resolve(ref);
    const bytes = readFileSync(this.layout.blobPath(record.manifestDigest));
    const manifest = this.manifest(record.manifestDigest);
    const entry = this.layout.readIndex().manifests.find((d) => d.digest === record.manifestDigest);
    return { record, manifest, bytes, mediaType: manifest.mediaType ?? entry?.mediaType ?? MEDIA_TYPE.manifest };
  }

  /**
   * `hull build`: store a layer made by the builder (an uncompressed tar stream). The blob is committed
   * at once (intermediate steps need it extracted) but belongs to no image until {@link commitBuilt}.
   */
  async putBuiltLayer(source: AsyncIterable<Uint8Array | string>, lease?: Lease): Promise<{ digest: string; size: number }> {
    const blob = await this.layout.writeTempBlob(source);
    try {
      await this.layout.withLock(() => {
        this.layout.commitBlob(blob);
        lease?.add([blob.digest]);
      });
    } finally {
      await this.layout.discardTemp(blob);
    }
    return { digest: blob.digest, size: blob.size };
  }

  /**
   * `hull build`: write a built image (config, manifest over layers already in the store) and give it
   * every name in `refs` in one index update (an unnamed entry when there are none).
   */
  async commitBuilt(config: OciImageConfigFile, layers: { digest: string; size: number; mediaType: string }[], refs: string[]): Promise<ImageRecord> {
    const targets = refs.map((r) => this.nameForWrite(r));
    const digest = await this.layout.withLock(() => {
      const missing = layers.find((l) => !this.layout.hasBlob(l.digest));
      if (missing) throw new IntegrityError(`layer ${missing.digest} left the store during the build (removed by hull rmi meanwhile?); build again`);
      const cfg = this.layout.putJson(config);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: cfg.digest, size: cfg.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      };
      const m = this.layout.putJson(manifest);
      const index = this.layout.readIndex();
      const desc: Descriptor = { mediaType: MEDIA_TYPE.manifest, digest: m.digest, size: m.size, platform: { architecture: config.architecture, os: config.os } };
      for (const t of targets) this.setName(index, t.full, desc);
      if (targets.length === 0 && !index.manifests.some((d) => d.digest === m.digest)) index.manifests.push(desc);
      this.layout.writeIndex(index);
      return m.digest;
    });
    return this.record(this.layout.readIndex(), digest);
  }

  /** Close the lock database. The store stays usable. */
  close(): void {
    this.layout.close();
  }

  /** Parse a reference that is about to name an image. */
  private nameForWrite(ref: string): ImageReference {
    const parsed = parseReference(ref);
    if (parsed.digest) throw new InvalidArgumentError(`cannot name an image ${ref}: a name takes a tag, not a digest`);
    if (/^[a-f0-9]{64}$/.test(parsed.name.split('/').pop()!)) {
      throw new InvalidArgumentError(`cannot name an image ${ref}: 64 hex digits would read as an image id`);
    }
    return parsed;
  }

  /** Store a one-layer image: layer blob, config, manifest, and the name in the index. */
  private async commitImage(layer: TempBlob, layerMediaType: string, config: OciImageConfigFile, ref: ImageReference): Promise<ImageRecord> {
    const digest = await this.layout.withLock(() => {
      this.layout.commitBlob(layer);
      const cfg = this.layout.putJson(config);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: cfg.digest, size: cfg.size },
        layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
      };
      const m = this.layout.putJson(manifest);
      const index = this.layout.readIndex();
      this.setName(index, ref.full, {
        mediaType: MEDIA_TYPE.manifest,
        digest: m.digest,
        size: m.size,
        platform: { architecture: config.architecture, os: config.os },
      });
      this.layout.writeIndex(index);
      return m.digest;
    });
    return this.record(this.layout.readIndex(), digest);
  }

  /**
   * Point `full` at the manifest `desc` in `index`. The image that had the name stays in the
   * index without a name when it has no other; a nameless entry of the new image goes away.
   */
  private setName(index: OciIndex, full: string, desc: Descriptor): void {
    const previous = index.manifests.find((d) => refName(d) === full);
    if (previous?.digest === desc.digest) return;
    index.manifests = index.manifests.filter((d) => refName(d) !== full && !(d.digest === desc.digest && refName(d) === undefined));
    const { annotations: _drop, ...plain } = desc;
    index.manifests.push({ ...plain, annotations: { [REF_NAME_ANNOTATION]: full } });
    if (previous && !index.manifests.some((d) => d.digest === previous.digest)) {
      const { annotations: _old, ...dangling } = previous;
      index.manifests.push(dangling);
    }
  }

  /** Look `ref` up in `index`: by name, then by id or id prefix. Null when nothing matches. */
  private find(index: OciIndex, ref: string): Match | null {
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (!looksLikeId(ref)) throw e;
    }
    if (parsed && !parsed.digest) {
      const d = index.manifests.find((m) => refName(m) === parsed!.full);
      if (d) return { digest: d.digest, name: parsed.full };
    }
    if (parsed?.digest) {
      const d = index.manifests.find((m) => m.digest === parsed!.digest && refName(m) !== undefined && repositoryOf(refName(m)!) === parsed!.name);
      if (d) return { digest: d.digest };
    }
    if (!looksLikeId(ref)) return null;
    const prefix = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
    const hits = new Map<string, string>(); // manifest digest → config id
    for (const d of index.manifests) {
      if (hits.has(d.digest)) continue;
      let id: string;
      try {
        id = this.manifest(d.digest).config.digest;
      } catch {
        id = d.digest; // an unreadable entry can still be named by its manifest digest (to remove it)
      }
      if (id.startsWith(prefix)) hits.set(d.digest, id);
    }
    const ids = new Set(hits.values());
    if (ids.size > 1) {
      throw new InvalidArgumentError(`image id prefix ${ref} is ambiguous: it matches ${[...ids].map((i) => i.slice(7, 19)).join(', ')}; give more digits`);
    }
    const first = hits.keys().next();
    return first.done ? null : { digest: first.value };
  }

  private manifest(digest: string): OciManifest {
    const m = this.layout.readJson<OciManifest>(digest);
    if (!m || typeof m !== 'object' || !m.config || !Array.isArray(m.layers)) {
      throw new IntegrityError(`blob ${digest} in the image index is not an image manifest; remove it with hull rmi`);
    }
    return m;
  }

  /** Build the record of manifest `digest` (names from `index`). */
  private record(index: OciIndex, digest: string): ImageRecord {
    const manifest = this.manifest(digest);
    const config = this.layout.readJson<OciImageConfigFile>(manifest.config.digest);
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new IntegrityError(`image ${manifest.config.digest} is inconsistent: its config lists ${diffIds?.length ?? 0} layers, its manifest ${manifest.layers.length}; remove it and import it again`);
    }
    const layers = manifest.layers.map((l, i) => {
      digestHex(l.digest);
      digestHex(diffIds[i]!);
      return { digest: l.digest, diffId: diffIds[i]!, size: l.size, mediaType: l.mediaType };
    });
    const names = index.manifests.filter((d) => d.digest === digest).map(refName).filter((n): n is string => n !== undefined).map(displayName);
    return {
      id: manifest.config.digest,
      manifestDigest: digest,
      names,
      config,
      created: config.created ?? '',
      size: layers.reduce((sum, l) => sum + l.size, 0),
      layers,
    };
  }

  /** The record, or for an entry whose blobs are unreadable, enough of one to remove it. */
  private recordOrStub(index: OciIndex, digest: string): Pick<ImageRecord, 'id' | 'names'> {
    try {
      return this.record(index, digest);
    } catch {
      const names = index.manifests.filter((d) => d.digest === digest).map(refName).filter((n): n is string => n !== undefined);
      return { id: digest, names: names.map(displayName) };
    }
  }

  private async unpack(layer: ImageRecord['layers'][number], dir: string): Promise<void> {
    let running = this.unpacking.get(layer.diffId);
    if (!running) {
      running = (async () => {
        mkdirSync(this.layersDir, { recursive: true, mode: 0o700 });
        const { unpackLayer } = await loadUnpack();
        const result = await unpackLayer(this.layout.blobPath(layer.digest), layer, dir, this.layerTemp);
        if (result.skipped > 0) {
          const more = result.skipped > result.warnings.length ? ` (and ${result.skipped - result.warnings.length} more)` : '';
          this.warn(`layer ${layer.digest}: ${result.skipped} entries not extracted: ${result.warnings.join('; ')}${more}`);
        }
      })().finally(() => this.unpacking.delete(layer.diffId));
      this.unpacking.set(layer.diffId, running);
    }
    await running;
  }
}

/** Bytes of the regular files under `path` (hard links counted once per directory walk). */
function treeSize(path: string): number {
  let total = 0;
  const seen = new Set<string>();
  const walk = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const n of readdirSync(p)) walk(join(p, n));
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        total += st.size;
      }
    }
  };
  walk(path);
  return total;
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
