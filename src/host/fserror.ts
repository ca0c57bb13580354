/**
 * Local file-system errors, told apart from everything else and described for people: a full disk, an exceeded
 * quota, a read-only or failing file system, a permission problem. These are not the network's fault and a retry
 * does not help, so callers (pull, build, the stores) turn them into one LocalFsError line that names the path,
 * the file system it is on (mount point, type, source, from /proc/self/mountinfo) and, for a full one, the space
 * that is free (statfs) against the space the work needs.
 */
import { realpathSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { LocalFsError } from '../common/errors.js';
import { readMountInfo } from './mount.js';

/** The errno codes that mean "the local file system cannot take this write". */
export const LOCAL_FS_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EACCES']);

/** Whether `e` is a local file-system error of {@link LOCAL_FS_CODES}. */
export function isLocalFsError(e: unknown): e is NodeJS.ErrnoException {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && LOCAL_FS_CODES.has(code) && !(e instanceof LocalFsError);
}

export interface FileSystemInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  readOnly: boolean;
  /** bytes an unprivileged writer may still use (statfs f_bavail × f_bsize) */
  free?: number;
  /** the file system's size in bytes */
  total?: number;
}

/** The nearest existing ancestor of `path` (the path itself when it exists), resolved. */
function existingAncestor(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      return realpathSync(p);
    } catch {
      if (p === dirname(p)) return p;
    }
  }
}

/** The file system that holds `path` (or would, for a path not yet made), with its free space; undefined if unknown. */
export function fileSystemOf(path: string): FileSystemInfo | undefined {
  const real = existingAncestor(path);
  let best: ReturnType<typeof readMountInfo>[number] | undefined;
  try {
    for (const m of readMountInfo()) {
      const under = m.mountPoint === '/' || real === m.mountPoint || real.startsWith(m.mountPoint + '/');
      // the last mount at the longest matching point is the one on top
      if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
    }
  } catch {
    /* no /proc: no mount table */
  }
  let free: number | undefined;
  let total: number | undefined;
  try {
    const s = statfsSync(real);
    free = Number(s.bavail) * Number(s.bsize);
    total = Number(s.blocks) * Number(s.bsize);
  } catch {
    /* unknown */
  }
  if (!best)
    return free === undefined
      ? undefined
      : { mountPoint: '?', fsType: '?', source: '?', readOnly: false, free, ...(total !== undefined ? { total } : {}) };
  return {
    mountPoint: best.mountPoint,
    fsType: best.fsType,
    source: best.source,
    readOnly: best.options.includes('ro'),
    ...(free !== undefined ? { free } : {}),
    ...(total !== undefined ? { total } : {}),
  };
}

/** Bytes for people: 1.5 GiB, 30.2 MiB, 512 B. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export interface FsErrorContext {
  /** the file hull was writing (or reading) */
  path: string;
  /** what hull was doing, for the start of the line: "writing layer sha256:ab12… of busybox" */
  action: string;
  /** bytes the work needs on that file system (e.g. the blob's size from the manifest), when known */
  needed?: number;
}

/**
 * A LocalFsError for a local file-system error `e` (see {@link isLocalFsError}), naming the path, the file system
 * and, for ENOSPC and EDQUOT, the free space against `needed`. Other errors are returned unchanged.
 */
export function describeLocalFsError(e: unknown, ctx: FsErrorContext): unknown {
  if (!isLocalFsError(e)) return e;
  const code = e.code!;
  const fs = fileSystemOf(ctx.path);
  const where = fs ? `file system ${fs.mountPoint} (${fs.fsType} on ${fs.source})` : 'its file system';
  const space = () => {
    const parts: string[] = [];
    if (fs?.free !== undefined)
      parts.push(`${humanBytes(fs.free)} free${fs.total !== undefined ? ` of ${humanBytes(fs.total)}` : ''}`);
    if (ctx.needed !== undefined) parts.push(`this needs ${humanBytes(ctx.needed)}`);
    return parts.length ? ` has ${parts.join(', ')}` : '';
  };
  let text: string;
  switch (code) {
    case 'ENOSPC':
      text = `no space left on device ${ctx.action}: ${ctx.path} is on ${where}, which${space() || ' is full'}; free space there or use a hull root (--root) on a larger file system`;
      break;
    case 'EDQUOT':
      text = `disk quota exceeded ${ctx.action}: ${ctx.path} is on ${where}, which${space() || ' is over quota'}; free space or raise the quota`;
      break;
    case 'EROFS':
      text = `read-only file system ${ctx.action}: ${ctx.path} is on ${where}, mounted read-only; remount it read-write or use another hull root (--root)`;
      break;
    case 'EIO':
      text = `I/O error ${ctx.action}: ${ctx.path} on ${where}; the disk or file system is failing, check the kernel log (dmesg)`;
      break;
    default: // EACCES
      text = `permission denied ${ctx.action}: ${ctx.path} (on ${where}); check the owner and mode of the hull root and that hull runs as root`;
  }
  return new LocalFsError(text, code, ctx.path, { cause: e });
}

/* ---- full disks, SQLite's included (the state store, builds, lifecycle, the space reserve) ---- */

/** Bytes that an unprivileged writer may still use on the file system holding `path` (statfs f_bavail), or undefined. */
export function freeBytes(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/**
 * Whether an error is a full disk: ENOSPC/EDQUOT from Node, SQLITE_FULL, or one of SQLite's I/O errors (a failed
 * extension of its WAL or -shm: SQLITE_IOERR_WRITE, _SHMSIZE, _FSYNC…) while the file system holding `where` is
 * nearly full. Without `where`, SQLite's I/O errors do not count.
 */
export function isNoSpace(e: unknown, where?: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true;
  if (where === undefined || typeof code !== 'string' || !code.startsWith('SQLITE_IOERR')) return false;
  const free = freeBytes(where);
  return free !== undefined && free < 1024 * 1024;
}

/** Whether `e` is a described full disk (ENOSPC or EDQUOT). */
export function isNoSpaceError(e: unknown): e is LocalFsError {
  return e instanceof LocalFsError && (e.errno === 'ENOSPC' || e.errno === 'EDQUOT');
}

/** For a full-disk error (see isNoSpace, SQLite's included) a LocalFsError naming path, file system and space; any other error unchanged. */
export function describeNoSpace(e: unknown, ctx: FsErrorContext): unknown {
  if (e instanceof LocalFsError || !isNoSpace(e, ctx.path)) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return describeLocalFsError(e, ctx);
  // SQLite's codes: the same ENOSPC for the description, the original as the cause
  const d = describeLocalFsError(
    Object.assign(new Error((e as Error).message), { code: 'ENOSPC' }),
    ctx,
  ) as LocalFsError;
  return new LocalFsError(d.message, 'ENOSPC', ctx.path, { cause: e });
}
