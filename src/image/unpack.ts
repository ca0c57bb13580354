/**
 * Reading layer tars and extracting them safely into overlayfs lower directories.
 *
 * node-tar parses the archive (headers, pax and GNU long names); the file system work is done
 * here rather than by node-tar's Unpack because a layer needs things Unpack does not do
 * (OCI whiteouts turned into overlayfs whiteouts and opaque directories, ownership kept
 * exactly, device nodes refused) and because its safety rules must hold whatever the order
 * of entries. The rules, applied to every entry:
 *
 * - paths are taken relative to the layer root: a leading `/` is dropped, `.` and empty
 *   components are ignored, and an entry with a `..` component is skipped;
 * - every parent directory of an entry must be a real directory (checked with lstat, never
 *   followed): an entry under a symlink (`evil -> /x` then `evil/pwned`) is skipped;
 * - whatever already sits at an entry's path is removed first (rm -r for a directory, never
 *   following symlinks), then files are created with O_EXCL|O_NOFOLLOW, so a write never
 *   lands on a symlink's target;
 * - hard links must point at a non-directory already extracted in the same layer;
 * - symlinks are created as they are (their targets are resolved later, inside the container);
 * - character and block devices are skipped: a device node in a layer directory would give
 *   anyone who can reach that directory on the host a handle on host hardware, and runtimes
 *   create /dev for containers anyway. FIFOs are created.
 *
 * Extraction is single-threaded and synchronous per entry into a private directory, so the
 * lstat checks cannot race with another writer. xattrs stored in the tar (SCHILY.xattr.*) are
 * read by hull's own scanner (node-tar's pax parser drops them) and file capabilities and user.*
 * attributes applied once the archive is extracted (see tar-xattrs.ts).
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  createReadStream,
  fchmodSync,
  fchownSync,
  futimesSync,
  linkSync,
  existsSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { zstdDecoder } from '../host/zstd.js';
import { XattrScanner, type Xattrs } from './tar-xattrs.js';
import { Parser, type ReadEntry } from 'tar';
import { IntegrityError, NotFoundError } from '../common/errors.js';
import { fsyncDir } from '../common/fsutil.js';
import { runProgram } from '../host/proc.js';
import type { TempArea } from './layout.js';

/** The bytes of a layer are not a valid (plain, gzip or zstd) tar archive. */
export class TarFormatError extends Error {
  /** digest of the whole blob when it could be computed, to tell corruption from a bad archive */
  digest?: string;
}

/** What reading a layer blob found. */
export interface LayerScan {
  /** sha256 of the blob as stored */
  digest: string;
  /** sha256 of the uncompressed tar (the OCI diffID) */
  diffId: string;
  /** size of the blob as stored */
  size: number;
  compression: 'gzip' | 'zstd' | 'none';
  /** entries node-tar parsed but skipped (unsupported types) */
  ignored: string[];
  /** the carried extended attributes (file capabilities, user.*) by entry path as written */
  xattrs: Map<string, Xattrs>;
}

type Compression = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

/** Detect a blob's compression from its first bytes. */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58) return 'xz';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  return 'none';
}

function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return 'sha256:' + h.digest('hex');
}

/**
 * Stream a layer blob (plain, gzip or zstd tar) once: hash the stored bytes (digest) and the
 * uncompressed bytes (diffID), and hand every tar entry to `onEntry` (entries it does not
 * consume must be resumed; without `onEntry` they are skipped). An error thrown by `onEntry`
 * stops the read and is rethrown as is; a malformed archive is a TarFormatError.
 */
export async function scanLayer(path: string, onEntry?: (entry: ReadEntry) => void): Promise<LayerScan> {
  const compression = detectCompression(readHead(path, 4));
  if (compression !== 'gzip' && compression !== 'zstd' && compression !== 'none') {
    const err = new TarFormatError(
      `${compression}-compressed tars are not supported: use a plain, gzip- or zstd-compressed tar`,
    );
    err.digest = await hashFile(path);
    throw err;
  }
  const digestHash = createHash('sha256');
  const diffHash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      digestHash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const noop = () => {
    /* errors surface through the iterator below */
  };
  const stream: Readable =
    compression === 'gzip'
      ? pipeline(file, tap, createGunzip(), noop)
      : compression === 'zstd'
        ? pipeline(file, tap, zstdDecoder(), noop)
        : pipeline(file, tap, noop);

  let fatal: string | undefined;
  const xattrScanner = new XattrScanner();
  let total = 0;
  let allZero = true;
  const ignored: string[] = [];
  const parser = new Parser({
    brotli: false,
    zstd: false,
    onReadEntry: (entry: ReadEntry) => (onEntry ? onEntry(entry) : entry.resume()),
  });
  parser.on('warn', (code: string, message: string) => {
    // an archive of zero blocks only is a valid empty layer; node-tar calls it unrecognized
    if (code === 'TAR_BAD_ARCHIVE' && allZero && total >= 1024) return;
    if (code === 'TAR_ENTRY_INVALID' || code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT') fatal ??= message;
    else ignored.push(`${code}: ${message}`);
  });
  parser.on('error', (e: Error) => {
    fatal ??= e.message;
  });
  parser.on('ignoredEntry', (e: ReadEntry) => {
    if (!e.meta) ignored.push(`skipped ${e.type} entry ${e.path}`);
  });
  const ended = new Promise<void>((resolve) => parser.on('end', () => resolve()));

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      diffHash.update(chunk);
      if (total === 0 && ['gzip', 'zstd'].includes(detectCompression(chunk)))
        fatal ??= 'the tar inside the blob is compressed again';
      total += chunk.length;
      if (allZero && chunk.some((b) => b !== 0)) allZero = false;
      if (fatal === undefined) {
        parser.write(chunk);
        xattrScanner.write(chunk);
      }
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('Z_') && code !== 'ZSTD_ERROR') {
      file.destroy();
      throw e;
    }
    const err = new TarFormatError(
      code === 'ZSTD_ERROR' ? (e as Error).message : `bad gzip data: ${(e as Error).message}`,
    );
    err.digest = await hashFile(path);
    throw err;
  }
  if (fatal === undefined) {
    parser.end();
    await ended;
  }
  const digest = 'sha256:' + digestHash.digest('hex');
  if (fatal !== undefined) {
    const err = new TarFormatError(fatal);
    err.digest = digest;
    throw err;
  }
  return { digest, diffId: 'sha256:' + diffHash.digest('hex'), size, compression, ignored, xattrs: xattrScanner.found };
}

/** Split an entry path into components inside the layer, or null when it climbs out (`..`). */
export function layerPathParts(path: string): string[] | null {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') ? null : parts;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** Errors that make one hostile or odd entry unusable without saying anything about the host. */
const ENTRY_ERRORS = new Set(['ENAMETOOLONG', 'EINVAL', 'ELOOP', 'EEXIST', 'ENOTDIR', 'EISDIR', 'EMLINK']);

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
/** paths per mkfifo/setfattr invocation */
const BATCH = 200;
const MAX_WARNINGS = 20;

interface PendingFifo {
  mode: number;
  uid: number;
  gid: number;
  mtime?: Date;
}

/**
 * Extracts the entries of one layer into `root` (a fresh private directory), in overlayfs
 * form: `.wh.NAME` becomes a 0/0 character device NAME, `.wh..wh..opq` sets
 * trusted.overlay.opaque=y on its directory. Feed it entries with {@link entry}, then call
 * {@link finish} once the archive is read.
 */
export class LayerExtractor {
  /** skipped entries, the first MAX_WARNINGS of them spelled out */
  readonly warnings: string[] = [];
  skipped = 0;
  /** relative paths known to be real directories ('' is the root) */
  private readonly dirs = new Set<string>(['']);
  private readonly dirTimes = new Map<string, Date>();
  private readonly whiteoutPaths = new Set<string>();
  private readonly opaque = new Set<string>();
  private readonly fifos = new Map<string, PendingFifo>();
  private readonly asRoot = process.getuid?.() === 0;
  private openFd: number | undefined;
  private whiteoutTemplate: string | undefined;
  private templates = 0;

  /**
   * @param root the directory to fill (exists, empty)
   * @param workDir a private directory on the same filesystem, outside `root`, for scratch files
   * @param whiteouts turn OCI whiteouts into overlayfs ones (a layer); false extracts `.wh.*` entries
   *   as what they are (an archive that is not a layer: ADD)
   */
  constructor(
    private readonly root: string,
    private readonly workDir: string,
    private readonly whiteouts = true,
  ) {}

  /** Handle one tar entry: create it (or record it for {@link finish}) and consume its data. */
  entry(e: ReadEntry): void {
    const parts = layerPathParts(e.path);
    if (parts === null) return this.skip(e, 'its path leaves the layer');
    try {
      const base = parts[parts.length - 1];
      if (this.whiteouts && base !== undefined && base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(e, parts);
      switch (e.type) {
        case 'File':
        case 'OldFile':
        case 'ContiguousFile':
          return this.file(e, parts);
        case 'Directory':
        case 'GNUDumpDir':
          return this.directory(e, parts);
        case 'SymbolicLink':
          return this.symlink(e, parts);
        case 'Link':
          return this.hardlink(e, parts);
        case 'FIFO':
          return this.fifo(e, parts);
        case 'CharacterDevice':
        case 'BlockDevice':
          return this.skip(e, 'device nodes are not extracted');
        default:
          return this.skip(e, `unsupported entry type ${e.type}`);
      }
    } catch (err) {
      if (this.openFd !== undefined) this.closeOpen();
      if (!ENTRY_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.skip(e, (err as Error).message);
    }
  }

  /** Create what had to wait for the whole archive: FIFOs, whiteouts, opaque markers, directory times. */
  async finish(): Promise<void> {
    const fifos = [...this.fifos].filter(([rel]) => this.free(rel));
    for (let i = 0; i < fifos.length; i += BATCH) {
      const batch = fifos.slice(i, i + BATCH);
      await runProgram('mkfifo', ['-m', '600', '--', ...batch.map(([rel]) => this.abs(rel))]);
      for (const [rel, f] of batch) {
        const abs = this.abs(rel);
        if (this.asRoot) lchownSync(abs, f.uid, f.gid);
        chmodSync(abs, f.mode);
        if (f.mtime) utimesSync(abs, f.mtime, f.mtime);
      }
    }
    for (const rel of this.whiteoutPaths) {
      if (this.free(rel)) await this.makeWhiteout(this.abs(rel));
    }
    const opaque = [...this.opaque].filter((rel) => this.isRealDir(rel)).map((rel) => this.abs(rel));
    for (let i = 0; i < opaque.length; i += BATCH) {
      await runProgram('setfattr', ['-h', '-n', OVERLAY_OPAQUE_XATTR, '-v', 'y', '--', ...opaque.slice(i, i + BATCH)], {
        hint: 'overlayfs opaque directories need the setfattr program (Debian package attr) and a filesystem with trusted xattrs',
      });
    }
    for (const [rel, t] of this.dirTimes) {
      if (this.isRealDir(rel)) utimesSync(this.abs(rel), t, t);
    }
  }

  /** Release what an interrupted extraction holds open. */
  abort(): void {
    this.closeOpen();
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  private skip(e: ReadEntry, why: string): void {
    this.skipped++;
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(`skipped ${e.type} ${JSON.stringify(e.path)}: ${why}`);
    e.resume();
  }

  /**
   * Check that every parent of `parts` is a real directory, creating missing ones when
   * `create` is set. False when a parent is a symlink or not a directory.
   */
  private parentsSafe(parts: string[], create: boolean): boolean {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel === '' ? parts[i]! : `${rel}/${parts[i]}`;
      if (this.dirs.has(rel)) continue;
      const abs = this.abs(rel);
      const st = lstatOrNull(abs);
      if (st === null) {
        if (!create) return false;
        mkdirSync(abs);
        chmodSync(abs, 0o755);
      } else if (!st.isDirectory()) {
        return false;
      }
      this.dirs.add(rel);
    }
    return true;
  }

  private isRealDir(rel: string): boolean {
    if (rel === '') return true;
    if (!this.parentsSafe(rel.split('/'), false)) return false;
    return lstatOrNull(this.abs(rel))?.isDirectory() ?? false;
  }

  /** Nothing sits at `rel` and its parents are real directories. */
  private free(rel: string): boolean {
    return this.parentsSafe(rel.split('/'), false) && lstatOrNull(this.abs(rel)) === null;
  }

  /** Clear the way for a non-directory entry: safe parents, nothing in place, no pending work. */
  private prepare(e: ReadEntry, parts: string[]): string | null {
    if (parts.length === 0) {
      this.skip(e, 'the layer root can only be a directory');
      return null;
    }
    if (!this.parentsSafe(parts, true)) {
      this.skip(e, 'a parent is a symlink or not a directory');
      return null;
    }
    const rel = parts.join('/');
    this.forget(rel);
    const abs = this.abs(rel);
    const st = lstatOrNull(abs);
    if (st?.isDirectory()) {
      rmSync(abs, { recursive: true, force: true });
      for (const d of this.dirs) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
      for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(`${rel}/`)) this.dirTimes.delete(d);
    } else if (st) {
      unlinkSync(abs);
    }
    return abs;
  }

  /** An entry for `rel` replaces a whiteout or FIFO recorded earlier for the same path. */
  private forget(rel: string): void {
    this.whiteoutPaths.delete(rel);
    this.fifos.delete(rel);
  }

  private closeOpen(): void {
    if (this.openFd === undefined) return;
    try {
      closeSync(this.openFd);
    } catch {
      /* already closed */
    }
    this.openFd = undefined;
  }

  private file(e: ReadEntry, parts: string[]): void {
    const abs = this.prepare(e, parts);
    if (abs === null) return;
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    const fd = openSync(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    this.openFd = fd;
    e.on('end', () => {
      if (this.asRoot) fchownSync(fd, e.uid ?? 0, e.gid ?? 0);
      fchmodSync(fd, (e.mode ?? 0o644) & 0o7777); // after chown, which clears set-id bits
      if (e.mtime) futimesSync(fd, e.atime ?? e.mtime, e.mtime);
      this.closeOpen();
    });
    e.on('data', (chunk: Buffer) => {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    });
  }

  private directory(e: ReadEntry, parts: string[]): void {
    const rel = parts.join('/');
    if (parts.length > 0) {
      if (!this.parentsSafe(parts, true)) return this.skip(e, 'a parent is a symlink or not a directory');
      this.forget(rel);
      const abs = this.abs(rel);
      const st = lstatOrNull(abs);
      if (st && !st.isDirectory()) unlinkSync(abs);
      if (!st || !st.isDirectory()) mkdirSync(abs);
      this.dirs.add(rel);
    }
    const abs = this.abs(rel);
    if (this.asRoot) chownSync(abs, e.uid ?? 0, e.gid ?? 0);
    chmodSync(abs, (e.mode ?? 0o755) & 0o7777);
    if (e.mtime) this.dirTimes.set(rel, e.mtime);
    e.resume();
  }

  private symlink(e: ReadEntry, parts: string[]): void {
    const abs = this.prepare(e, parts);
    if (abs === null) return;
    symlinkSync(e.linkpath ?? '', abs);
    if (this.asRoot) lchownSync(abs, e.uid ?? 0, e.gid ?? 0);
    if (e.mtime) lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
    e.resume();
  }

  private hardlink(e: ReadEntry, parts: string[]): void {
    const target = layerPathParts(e.linkpath ?? '');
    if (target === null || target.length === 0) return this.skip(e, 'its link target leaves the layer');
    const targetRel = target.join('/');
    if (targetRel === parts.join('/')) return e.resume();
    const targetAbs = this.abs(targetRel);
    const targetOk = () => this.parentsSafe(target, false) && !(lstatOrNull(targetAbs)?.isDirectory() ?? true);
    if (!targetOk())
      return this.skip(e, `link target ${JSON.stringify(e.linkpath)} is not a file extracted earlier in this layer`);
    const abs = this.prepare(e, parts);
    if (abs === null) return;
    // clearing the way may have removed the target (when it lived under the replaced path)
    if (!targetOk()) return this.skip(e, `link target ${JSON.stringify(e.linkpath)} was replaced`);
    linkSync(targetAbs, abs);
    e.resume();
  }

  private fifo(e: ReadEntry, parts: string[]): void {
    if (this.prepare(e, parts) === null) return;
    this.fifos.set(parts.join('/'), {
      mode: (e.mode ?? 0o644) & 0o7777,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      ...(e.mtime ? { mtime: e.mtime } : {}),
    });
    e.resume();
  }

  private whiteout(e: ReadEntry, parts: string[]): void {
    const base = parts[parts.length - 1]!;
    if (!this.parentsSafe(parts, true)) return this.skip(e, 'a parent is a symlink or not a directory');
    const parent = parts.slice(0, -1).join('/');
    if (base === OPAQUE_MARKER) {
      this.opaque.add(parent);
    } else {
      const name = base.slice(WHITEOUT_PREFIX.length);
      // other .wh..wh.* names are aufs bookkeeping, not whiteouts
      if (name === '' || name.startsWith(WHITEOUT_PREFIX)) return e.resume();
      this.whiteoutPaths.add(parent === '' ? name : `${parent}/${name}`);
    }
    e.resume();
  }

  /**
   * Create an overlayfs whiteout (character device 0/0) at `abs`. Node cannot mknod, so one
   * device is made with mknod(1) per layer and hard-linked to every whiteout (overlayfs
   * itself shares whiteout inodes the same way); a new one is made when the link count is full.
   */
  private async makeWhiteout(abs: string): Promise<void> {
    for (;;) {
      if (this.whiteoutTemplate === undefined) {
        const template = join(this.workDir, `whiteout-${this.templates++}`);
        await runProgram('mknod', ['-m', '0', template, 'c', '0', '0']);
        this.whiteoutTemplate = template;
      }
      try {
        linkSync(this.whiteoutTemplate, abs);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EMLINK') throw e;
        this.whiteoutTemplate = undefined;
      }
    }
  }
}

/** What {@link unpackLayer} did. */
export interface UnpackResult {
  /** entries skipped for safety or because their type is not supported */
  skipped: number;
  /** the first skipped entries, spelled out */
  warnings: string[];
}

/**
 * Extract the layer blob at `blobPath` into `dest` (`<root>/layers/<diffID hex>`), checking
 * the blob's digest and the uncompressed tar's diffID on the way. The layer is extracted into
 * a private directory of `temp` and renamed to `dest` only when complete and verified, so
 * nobody sees a half-extracted layer and a mismatch (IntegrityError) leaves nothing behind.
 * When another process finished the same layer first, its copy is kept.
 */
export async function unpackLayer(
  blobPath: string,
  expected: { digest: string; diffId: string },
  dest: string,
  temp: TempArea,
): Promise<UnpackResult> {
  const work = temp.path();
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const root = join(work, 'root');
  mkdirSync(root);
  chmodSync(root, 0o755);
  const extractor = new LayerExtractor(root, work);
  try {
    let scan: LayerScan;
    try {
      scan = await scanLayer(blobPath, (e) => extractor.entry(e));
    } catch (e) {
      extractor.abort();
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(blobPath)) {
        throw new NotFoundError(
          `layer blob ${expected.digest} is missing from the image store; remove the image and import it again`,
        );
      }
      if (!(e instanceof TarFormatError)) throw e;
      if (e.digest !== undefined && e.digest !== expected.digest) throw digestMismatch(expected.digest, e.digest);
      throw new IntegrityError(
        `layer ${expected.digest} is not a valid tar archive (${e.message}); remove the image and import it again`,
      );
    }
    if (scan.digest !== expected.digest) throw digestMismatch(expected.digest, scan.digest);
    if (scan.diffId !== expected.diffId) {
      throw new IntegrityError(
        `layer ${expected.digest} uncompresses to ${scan.diffId}, but the image config says ${expected.diffId}; the image is corrupt: remove it and import it again`,
      );
    }
    await extractor.finish();
    await applyXattrs(root, scan.xattrs);
    // data on disk before the layer becomes visible: a crash must not leave a layer with holes
    await runProgram('sync', ['-f', root]);
    if (!existsSync(dest)) {
      try {
        renameSync(root, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(dest))) throw e;
      }
      fsyncDir(dirname(dest));
    }
    return {
      skipped: extractor.skipped + scan.ignored.length,
      warnings: [...extractor.warnings, ...scan.ignored].slice(0, MAX_WARNINGS),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Set the carried xattrs (see tar-xattrs.ts) on the extracted files and directories, in one
 * `setfattr --restore` run (Node.js has no setxattr). Entries that are not a real file or directory of
 * the layer (a symlink, a whiteout, a path that leaves the layer, an entry skipped for safety) get none.
 */
async function applyXattrs(root: string, found: Map<string, Xattrs>): Promise<void> {
  if (found.size === 0) return;
  let dump = '';
  for (const [path, attrs] of found) {
    const parts = layerPathParts(path);
    if (parts === null || parts.length === 0) continue;
    const abs = join(root, ...parts);
    const st = lstatOrNull(abs);
    if (!st || !(st.isFile() || st.isDirectory())) continue;
    dump += `# file: ${escapeForGetfattr(abs)}\n`;
    for (const [name, value] of Object.entries(attrs)) dump += `${name}=0s${value.toString('base64')}\n`;
    dump += '\n';
  }
  if (dump === '') return;
  await runProgram('setfattr', ['--restore=-'], {
    input: dump,
    hint: 'file capabilities in image layers need the setfattr program (Debian package attr)',
  });
}

/** A path in getfattr's dump format: bytes other than plain name characters as \ooo octal escapes. */
function escapeForGetfattr(path: string): string {
  return [...Buffer.from(path, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9/._+,:@-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : '\\' + b.toString(8).padStart(3, '0'),
    )
    .join('');
}

function digestMismatch(expected: string, actual: string): IntegrityError {
  return new IntegrityError(
    `layer blob ${expected} is corrupt: its content hashes to ${actual}; remove the image and import it again`,
  );
}

/**
 * Extract a (plain, gzip or zstd) tar archive that is not an image layer (ADD of a local archive) into
 * `dest` (an existing empty directory) with the layer rules above: entries stay inside `dest` whatever
 * their paths and links say, symlinks are kept as written (absolute targets too), `.wh.*` entries are
 * plain files. `workDir` is a private scratch directory on the same filesystem. Returns what was skipped.
 */
export async function extractArchive(file: string, dest: string, workDir: string): Promise<UnpackResult> {
  const extractor = new LayerExtractor(dest, workDir, false);
  let scan: LayerScan;
  try {
    scan = await scanLayer(file, (e) => extractor.entry(e));
  } catch (e) {
    extractor.abort();
    throw e;
  }
  await extractor.finish();
  await applyXattrs(dest, scan.xattrs);
  return {
    skipped: extractor.skipped + scan.ignored.length,
    warnings: [...extractor.warnings, ...scan.ignored].slice(0, MAX_WARNINGS),
  };
}
