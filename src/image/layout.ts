/**
 * The content store: an OCI image layout (image-spec `image-layout.md`) in `<root>/images`.
 *
 *     <root>/images/oci-layout          {"imageLayoutVersion": "1.0.0"}
 *     <root>/images/index.json          one descriptor per name (annotation ref.name), plus
 *                                       unnamed descriptors for images that lost their name
 *     <root>/images/blobs/sha256/<hex>  layers, configs and manifests, content-addressed
 *     <root>/images/.tmp/               blobs being written (never part of the layout)
 *     <root>/images/.hull-lock.db       the writers' lock (see {@link OciLayout.withLock})
 *
 * Blob writes stream into a temp file, hash while writing, check the expected digest, fsync,
 * and become visible only by rename, so a crash never leaves a partial blob under blobs/.
 * Renames into blobs/ and index.json updates happen under one lock, which is what makes
 * deleting unreferenced blobs safe: a blob is either referenced by the index or was committed
 * by a writer that has not updated the index yet, and that writer holds the lock.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { HullError, IntegrityError, NotFoundError } from '../common/errors.js';
import { fsyncDir, writeFileAtomic } from '../common/fsutil.js';
import { processAlive } from '../host/proc.js';
import { MEDIA_TYPE, type OciIndex, type OciLayoutFile } from './types.js';

/** How long a writer waits for another hull process to release the store lock. */
const LOCK_TIMEOUT_MS = 30_000;

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** The hex part of a `sha256:<hex>` digest; IntegrityError for anything else (never a path). */
export function digestHex(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new IntegrityError(`malformed digest "${digest}" in the image store: expected sha256:<64 hex digits>`);
  return m[1]!;
}

/** sha256 of a buffer as `sha256:<hex>`. */
export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** A blob written to a temp file and fsynced, not yet visible in the store. */
export interface TempBlob {
  path: string;
  digest: string;
  size: number;
}

/**
 * A directory of per-process scratch entries named `<pid>-<random><suffix>`, on the same
 * filesystem as the store so that finished entries can be renamed into place. Entries left
 * by dead processes (a crash, a kill -9) are removed the first time an instance uses the area.
 */
export class TempArea {
  private cleaned = false;
  constructor(readonly dir: string) {}

  /** A fresh, unused path in the area (nothing is created). */
  path(suffix = ''): string {
    if (!this.cleaned) this.cleanStale();
    return join(this.dir, `${process.pid}-${randomBytes(8).toString('hex')}${suffix}`);
  }

  /** Remove entries whose owning process is gone. Entries of live processes are left alone. */
  cleanStale(): void {
    this.cleaned = true;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir)) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (pid && pid !== process.pid && !processAlive(pid))
        rmSync(join(this.dir, name), { recursive: true, force: true });
    }
  }
}

/** Read access and locked write access to one OCI image layout directory. */
export class OciLayout {
  readonly blobsDir: string;
  readonly temp: TempArea;
  private readonly indexPath: string;
  private readonly lockPath: string;
  /** parsed JSON blobs by digest; blobs are immutable, so entries never go stale */
  private readonly jsonCache = new Map<string, unknown>();
  private lockDb: Promise<BetterSqlite3.Database> | undefined;
  private inLock = false;

  constructor(readonly dir: string) {
    this.blobsDir = join(dir, 'blobs', 'sha256');
    this.indexPath = join(dir, 'index.json');
    this.lockPath = join(dir, '.hull-lock.db');
    this.temp = new TempArea(join(dir, '.tmp'));
  }

  /** Path of the blob with this digest (which is validated, so never a path outside blobs/). */
  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  /** Whether the store holds the blob. */
  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  /** index.json; an empty index when the store was never written. */
  readIndex(): OciIndex {
    let text: string;
    try {
      text = readFileSync(this.indexPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw e;
    }
    let index: OciIndex;
    try {
      index = JSON.parse(text) as OciIndex;
    } catch (e) {
      throw new IntegrityError(
        `${this.indexPath} is not valid JSON (${(e as Error).message}); restore it or remove the image store`,
      );
    }
    if (!index || !Array.isArray(index.manifests)) {
      throw new IntegrityError(`${this.indexPath} has no manifests list; restore it or remove the image store`);
    }
    return index;
  }

  /** A JSON blob, parsed (cached per digest). Its digest was checked when it was written. */
  readJson<T>(digest: string): T {
    const cached = this.jsonCache.get(digest);
    if (cached !== undefined) return cached as T;
    let text: string;
    try {
      text = readFileSync(this.blobPath(digest), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new NotFoundError(
          `blob ${digest} is missing from the image store ${this.dir}; remove the image and import it again`,
        );
      }
      throw e;
    }
    let value: T;
    try {
      value = JSON.parse(text) as T;
    } catch (e) {
      throw new IntegrityError(
        `blob ${digest} is not valid JSON (${(e as Error).message}); remove the image and import it again`,
      );
    }
    this.jsonCache.set(digest, value);
    return value;
  }

  /**
   * Stream `source` into a temp file in the store, hashing as it goes, then fsync. When
   * `expected` is given, a different digest is an IntegrityError and the temp file is removed.
   * The blob is not visible until {@link commitBlob}.
   */
  async writeTempBlob(source: AsyncIterable<Uint8Array | string>, expected?: string): Promise<TempBlob> {
    const path = this.temp.path('.blob');
    const fh = await open(path, 'wx', 0o644);
    const hash = createHash('sha256');
    let size = 0;
    // Network chunks are small (tens of KiB): gather them and write 1 MiB at a time, which halves the
    // time a pull spends in write calls and their promise round trips.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const bufs = pending;
      const total = pendingBytes;
      pending = [];
      pendingBytes = 0;
      // one writev, no copy; a short write (rare: disk full is an error, not a short write) goes on from there
      const written = (await fh.writev(bufs)).bytesWritten;
      if (written < total) {
        const rest = Buffer.concat(bufs, total).subarray(written);
        let off = 0;
        while (off < rest.length) off += (await fh.write(rest, off, rest.length - off)).bytesWritten;
      }
    };
    try {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        hash.update(buf);
        size += buf.length;
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= 1 << 20) await flush();
      }
      if (pendingBytes > 0) await flush();
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(path, { force: true });
      throw e;
    }
    await fh.close();
    const digest = 'sha256:' + hash.digest('hex');
    if (expected !== undefined && expected !== digest) {
      await rm(path, { force: true });
      throw new IntegrityError(`blob digest mismatch: expected ${expected}, got ${digest}`);
    }
    return { path, digest, size };
  }

  /** Drop a temp blob that will not be committed. */
  async discardTemp(blob: TempBlob): Promise<void> {
    await rm(blob.path, { force: true });
  }

  /** Make a temp blob visible under its digest (a no-op when the store has it). Call under the lock. */
  commitBlob(blob: TempBlob): void {
    this.assertLocked();
    this.init();
    const target = this.blobPath(blob.digest);
    if (existsSync(target)) {
      unlinkSync(blob.path);
      return;
    }
    renameSync(blob.path, target);
    fsyncDir(this.blobsDir);
  }

  /** Store a small blob (a manifest or config) from memory. Call under the lock. */
  putBlob(data: Uint8Array): { digest: string; size: number } {
    this.assertLocked();
    this.init();
    const digest = sha256(data);
    const target = this.blobPath(digest);
    if (!existsSync(target)) {
      const tmp = this.temp.path('.blob');
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, target);
      fsyncDir(this.blobsDir);
    }
    return { digest, size: data.length };
  }

  /** Store a JSON value as a blob (compact JSON, which is what its digest covers). Call under the lock. */
  putJson(value: unknown): { digest: string; size: number } {
    return this.putBlob(Buffer.from(JSON.stringify(value)));
  }

  /** Replace index.json atomically. Call under the lock. */
  writeIndex(index: OciIndex): void {
    this.assertLocked();
    this.init();
    const text = JSON.stringify(index, null, 2) + '\n';
    // an unchanged index (a cached rebuild tagging the image it had) is not written again
    try {
      if (readFileSync(this.indexPath, 'utf8') === text) return;
    } catch {
      // none yet
    }
    writeFileAtomic(this.indexPath, text);
  }

  /**
   * Run `fn` while holding the store's write lock, shared by every hull process on the host.
   *
   * The lock is an SQLite write transaction (`BEGIN IMMEDIATE`) on an otherwise empty database
   * file, taken through better-sqlite3, which hull already depends on. SQLite locks with fcntl
   * byte-range locks, which the kernel releases when the holding process dies, so a crashed or
   * killed hull never leaves a stale lock behind. A lock file or directory with a pid inside
   * needs stale-lock detection, and breaking a stale lock without racing a third process that
   * takes it at the same moment is hard to get right. `fn` is synchronous on purpose: critical
   * sections are a few renames and one index write, and an await inside could not be allowed
   * to hold other processes up.
   */
  async withLock<T>(fn: () => T): Promise<T> {
    const db = await this.openLock();
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') {
        throw new HullError(
          `the image store ${this.dir} stayed locked by another hull process for ${LOCK_TIMEOUT_MS / 1000} s; retry, or find the process with: fuser ${this.lockPath}`,
        );
      }
      throw e;
    }
    this.inLock = true;
    try {
      return fn();
    } finally {
      this.inLock = false;
      db.exec('COMMIT');
    }
  }

  /** Close the lock database (the store stays usable; the next write reopens it). */
  close(): void {
    const db = this.lockDb;
    this.lockDb = undefined;
    void db?.then(
      (d) => d.close(),
      () => {
        /* never opened */
      },
    );
  }

  /**
   * Delete blobs that no index entry reaches (through manifests, and through nested indexes),
   * nor any digest of `alsoKeep` (leases of operations in progress). Returns the deleted digests.
   * Call under the lock.
   */
  deleteUnreferencedBlobs(alsoKeep: Iterable<string> = []): string[] {
    this.assertLocked();
    const keep = new Set<string>();
    const extra = [...alsoKeep];
    const visit = (digest: string): void => {
      if (keep.has(digest)) return;
      keep.add(digest);
      if (!this.hasBlob(digest)) return;
      let doc: { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
      try {
        doc = this.readJson(digest);
      } catch {
        return; // not JSON (cannot reference anything) or unreadable: keep it, reach nothing
      }
      if (doc.config?.digest) keep.add(doc.config.digest);
      for (const l of doc.layers ?? []) keep.add(l.digest);
      for (const m of doc.manifests ?? []) visit(m.digest);
    };
    for (const d of this.readIndex().manifests) visit(d.digest);
    for (const d of extra) keep.add(d);
    const deleted: string[] = [];
    let names: string[];
    try {
      names = readdirSync(this.blobsDir);
    } catch {
      return deleted;
    }
    for (const name of names) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const digest = `sha256:${name}`;
      if (keep.has(digest)) continue;
      unlinkSync(join(this.blobsDir, name));
      this.jsonCache.delete(digest);
      deleted.push(digest);
    }
    if (deleted.length) fsyncDir(this.blobsDir);
    return deleted;
  }

  /** Create oci-layout, index.json and blobs/sha256 if missing. Call under the lock. */
  private init(): void {
    if (existsSync(this.blobsDir) && existsSync(join(this.dir, 'oci-layout'))) return;
    mkdirSync(this.blobsDir, { recursive: true });
    const layout: OciLayoutFile = { imageLayoutVersion: '1.0.0' };
    writeFileAtomic(join(this.dir, 'oci-layout'), JSON.stringify(layout) + '\n');
    if (!existsSync(this.indexPath)) writeFileAtomic(this.indexPath, JSON.stringify(emptyIndex(), null, 2) + '\n');
  }

  private assertLocked(): void {
    if (!this.inLock) throw new Error('image store write outside withLock (a bug in hull)');
  }

  private openLock(): Promise<BetterSqlite3.Database> {
    this.lockDb ??= (async () => {
      // loaded on first write only: resolving an image (every `hull run`) never pays for it
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      return new Database(this.lockPath, { timeout: LOCK_TIMEOUT_MS });
    })();
    this.lockDb.catch(() => {
      this.lockDb = undefined;
    });
    return this.lockDb;
  }
}

function emptyIndex(): OciIndex {
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
}
