/**
 * Resolving a path inside a root that hull does not own (a build context, an image's layers, an
 * extracted archive) as if that root were `/`: what openat2(RESOLVE_IN_ROOT) does in the kernel and
 * cyphar/filepath-securejoin, BuildKit and docker do in Go. Node has no openat2, so the path is walked
 * one component at a time: each component is lstat'ed (never followed), a symlink's target is read and
 * put in front of what is left (an absolute target restarts at the root), `..` stops at the root, and
 * more than {@link MAX_SYMLINKS} links end the walk (ELOOP). The result is a path relative to the root
 * whose every component but the last, as far as it exists, is a real directory inside the root, so
 * `join(root, result)` names something inside the root however hostile the links in it are.
 *
 * The walk is only as good as the root is still: a root that someone else can change while hull
 * reads it (a running container's rootfs) can swap a checked directory for a link between the check
 * and the use. hull uses it on roots that nothing else writes to while it reads them.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from './errors.js';

/** The most symlinks one resolution follows (filepath-securejoin's limit). */
export const MAX_SYMLINKS = 255;

/** A path inside a root went through too many symlinks (a loop). */
export class SymlinkLoopError extends InvalidArgumentError {
  override readonly code: string = 'HULL_SYMLINK_LOOP';
}

/** How to look at a root: lstat (null when missing) and readlink of root-relative paths. */
export interface RootOps {
  lstat(rel: string): Stats | null;
  readlink(rel: string): string;
}

/** A plain host directory as a root. */
export function hostRoot(root: string): RootOps {
  return {
    lstat(rel) {
      try {
        return lstatSync(rel === '' ? root : join(root, rel));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return null;
        throw e;
      }
    },
    readlink: (rel) => readlinkSync(join(root, rel)),
  };
}

/**
 * `path` (absolute or relative; both are taken from the root) resolved inside the root, as a path
 * relative to it ('' for the root itself). The last component is followed too when `followLast`.
 * Components that do not exist are kept as written (the rest cannot be links). Throws
 * {@link SymlinkLoopError} past {@link MAX_SYMLINKS} links.
 */
export function resolveInRootOps(ops: RootOps, path: string, followLast: boolean, what = path): string {
  let todo = path.split('/');
  const done: string[] = [];
  let links = 0;
  let missing = false;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!missing) done.pop();
      else done.push(part);
      continue;
    }
    if (missing) {
      done.push(part);
      continue;
    }
    const last = !todo.some((p) => p !== '' && p !== '.');
    const st = ops.lstat([...done, part].join('/'));
    if (!st) {
      // nothing below a missing component can be a link: the rest is kept as written (normalized)
      missing = true;
      done.push(part);
      continue;
    }
    if (!st.isSymbolicLink() || (last && !followLast)) {
      done.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new SymlinkLoopError(`too many levels of symbolic links resolving ${what}`);
    const target = ops.readlink([...done, part].join('/'));
    if (target.startsWith('/')) done.length = 0;
    todo = [...target.split('/'), ...todo];
  }
  // `..` after a missing component: normalize lexically, never above the root
  if (missing) {
    const out: string[] = [];
    for (const p of done) {
      if (p === '..') out.pop();
      else out.push(p);
    }
    return out.join('/');
  }
  return done.join('/');
}

/** {@link resolveInRootOps} over a host directory. */
export function resolveInDir(root: string, path: string, followLast: boolean): string {
  return resolveInRootOps(hostRoot(root), path, followLast);
}
