/**
 * A full disk, described for people: the path hull was writing, the file system it is on (mount point, type,
 * source) and the space there (free of total, and what the work needed or had written). Node's own ENOSPC
 * errors name no path for writes ("ENOSPC: no space left on device, write") and SQLite's say only "database or
 * disk is full".
 *
 * (The registry branch adds a broader helper, host/fserror.ts, for every local file-system error of pulls; this
 * one covers the state store, builds and lifecycle. They are meant to be merged.)
 */
import { realpathSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { HullError } from '../common/errors.js';
import { readMountInfo } from './mount.js';
import { isNoSpace } from './reserve.js';

/** Bytes for people: 1.5 GiB, 30.2 MiB, 512 B. */
export function bytesText(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** "file system /mnt (ext4 on /dev/loop0), which has 0 B free of 54.7 MiB", for the file system holding `path`. */
export function fileSystemText(path: string): string {
  let real = path;
  for (let p = path; ; p = dirname(p)) {
    try {
      real = realpathSync(p);
      break;
    } catch {
      if (p === dirname(p)) break;
    }
  }
  let where = 'its file system';
  try {
    let best: { mountPoint: string; fsType: string; source: string } | undefined;
    for (const m of readMountInfo()) {
      const under = m.mountPoint === '/' || real === m.mountPoint || real.startsWith(m.mountPoint + '/');
      if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
    }
    if (best) where = `file system ${best.mountPoint} (${best.fsType} on ${best.source})`;
  } catch { /* no mount table */ }
  try {
    const s = statfsSync(real);
    return `${where}, which has ${bytesText(Number(s.bavail) * Number(s.bsize))} free of ${bytesText(Number(s.blocks) * Number(s.bsize))}`;
  } catch {
    return where;
  }
}

/** A full disk while writing `path`. */
export class NoSpaceError extends HullError {
  override readonly code: string = 'HULL_NO_SPACE';
}

export interface NoSpaceContext {
  /** the file (or directory) hull was writing */
  path: string;
  /** what hull was doing: "writing the layer of RUN dd …" */
  action: string;
  /** bytes the work needed, when known */
  needed?: number;
  /** bytes written before the disk filled, when known (the work needed more) */
  written?: number;
}

/** For a full-disk error (see isNoSpace) a NoSpaceError naming path, file system and space; any other error unchanged. */
export function describeNoSpace(e: unknown, ctx: NoSpaceContext): unknown {
  if (!isNoSpace(e, ctx.path) || e instanceof NoSpaceError) return e;
  const need = ctx.needed !== undefined ? `; this needs ${bytesText(ctx.needed)}`
    : ctx.written !== undefined ? `; ${bytesText(ctx.written)} were written before it filled, and more was needed` : '';
  return new NoSpaceError(`no space left on device ${ctx.action}: ${ctx.path} is on ${fileSystemText(ctx.path)}${need}; ` +
    'free space there (hull system prune, hull image prune, hull rm) or use a hull root (--root) on a larger file system', { cause: e });
}
