/**
 * Mount mechanism: thin wrappers over mount(8) and umount(8), plus /proc/self/mountinfo parsing.
 * Policy (what to mount where) lives in the callers (src/container/rootfs.ts).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { HostCommandError, HostSupportError } from '../common/errors.js';
import { runProgram } from './proc.js';

/** One line of /proc/<pid>/mountinfo. */
export interface MountInfo {
  id: number;
  parentId: number;
  /** major:minor of the filesystem */
  device: string;
  /** the root of the mount inside its filesystem */
  root: string;
  mountPoint: string;
  /** per-mount options (rw, nosuid, ...) */
  options: string[];
  /** optional fields such as shared:N, master:N */
  optional: string[];
  fsType: string;
  source: string;
  /** per-superblock options (lowerdir=..., mode=...) */
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Split super options on commas, keeping escaped commas (overlay escapes them as \,) intact. */
function splitOptions(s: string): string[] {
  return s.split(/(?<!\\),/).filter(Boolean);
}

/** Parse the text of a mountinfo file. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0 || f.length < dash + 3) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2]!,
      root: unescapeOctal(f[3]!),
      mountPoint: unescapeOctal(f[4]!),
      options: f[5]!.split(','),
      optional: f.slice(6, dash),
      fsType: f[dash + 1]!,
      source: unescapeOctal(f[dash + 2]!),
      superOptions: splitOptions(f[dash + 3] ?? ''),
    });
  }
  return out;
}

/** The mount table of a process (default: this one). */
export function readMountInfo(pid: number | 'self' = 'self'): MountInfo[] {
  return parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

/** Resolve symlinks where the path exists, so it compares with mountinfo's canonical paths. */
function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** True when `path` is a mount point in this process's mount namespace. */
export function isMountpoint(path: string, table: MountInfo[] = readMountInfo()): boolean {
  const p = canonical(path);
  return table.some((m) => m.mountPoint === p);
}

/**
 * Mounts at or below `dir`, deepest first (the order to unmount them in). A mount point
 * stacked several times is listed once per mount.
 */
export function mountsUnder(dir: string, table: MountInfo[] = readMountInfo()): MountInfo[] {
  const d = canonical(dir);
  const prefix = d.endsWith(sep) ? d : d + sep;
  return table
    .filter((m) => m.mountPoint === d || m.mountPoint.startsWith(prefix))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length || b.id - a.id);
}

/** Options for {@link mountOverlay}. */
export interface OverlayOptions {
  /** lower directories, TOP FIRST (overlayfs order) */
  lower: string[];
  /** writable layer; omit together with `work` for a read-only overlay (needs 2+ lowers) */
  upper?: string;
  work?: string;
  readOnly?: boolean;
  /** further overlay options, e.g. metacopy=on */
  extra?: string[];
}

/** mount(2) takes at most one page of option data, the terminating NUL included. */
const MOUNT_DATA_MAX = 4095;

/** Overlay separates lower dirs with ':' and options with ','; escape both in paths. */
function overlayPath(p: string): string {
  return p.replace(/\\/g, '\\\\').replace(/:/g, '\\:').replace(/,/g, '\\,');
}

/** The longest directory that contains all of `paths`. */
function commonDir(paths: string[]): string {
  let common = paths[0]!;
  for (const p of paths.slice(1)) {
    while (!(p === common || p.startsWith(common.endsWith(sep) ? common : common + sep))) {
      const up = dirname(common);
      if (up === common) return sep;
      common = up;
    }
  }
  return common;
}

/**
 * Mount an overlay filesystem at `target` with one mount(8) call. When the option string
 * would exceed a page (many layers with long paths), the paths are given relative to their
 * common parent and mount runs there (the kernel resolves them against the caller's cwd).
 */
export async function mountOverlay(target: string, o: OverlayOptions): Promise<void> {
  if (o.lower.length === 0) throw new Error('mountOverlay: no lower directories');
  const build = (conv: (p: string) => string): string => {
    const opts = [`lowerdir=${o.lower.map((p) => overlayPath(conv(p))).join(':')}`];
    if (o.upper && o.work) opts.push(`upperdir=${overlayPath(conv(o.upper))}`, `workdir=${overlayPath(conv(o.work))}`);
    if (o.readOnly) opts.push('ro');
    opts.push(...(o.extra ?? []));
    return opts.join(',');
  };
  let options = build((p) => p);
  let cwd: string | undefined;
  if (Buffer.byteLength(options) > MOUNT_DATA_MAX) {
    const all = [...o.lower, ...(o.upper && o.work ? [o.upper, o.work] : [])].map((p) => resolve(p));
    cwd = commonDir(all);
    const base = cwd;
    options = build((p) => relative(base, resolve(p)) || '.');
    if (Buffer.byteLength(options) > MOUNT_DATA_MAX) {
      throw new HostSupportError(
        `too many layers (${o.lower.length}) for one overlay mount: the layer paths exceed the kernel's one-page limit for mount options`,
      );
    }
  }
  try {
    await runProgram('mount', ['-t', 'overlay', 'overlay', '-o', options, resolve(target)], { cwd });
  } catch (e) {
    if (!(e instanceof HostCommandError)) throw e;
    throw new HostCommandError(
      'mount',
      [`overlay on ${target}`],
      e.status,
      e.stderr,
      'check that the image layers are intact and that the kernel supports overlayfs',
    );
  }
}

/** Options for {@link bindMount}. */
export interface BindOptions {
  readOnly?: boolean;
  /** recursive bind (rbind) */
  recursive?: boolean;
  /** further mount options, e.g. nosuid,nodev */
  extra?: string[];
}

/** Bind `source` onto `target` (mount(8) applies read-only with a remount in the same call). */
export async function bindMount(source: string, target: string, o: BindOptions = {}): Promise<void> {
  const opts = [o.recursive ? 'rbind' : 'bind', ...(o.readOnly ? ['ro'] : []), ...(o.extra ?? [])];
  await runProgram('mount', ['-o', opts.join(','), source, target]).catch((e: unknown) => {
    throw e instanceof HostCommandError
      ? new HostCommandError('mount', [`bind ${source} on ${target}`], e.status, e.stderr)
      : e;
  });
}

/** Mount a tmpfs at `target` with options such as size=64m,mode=1777. */
export async function mountTmpfs(target: string, options: string[] = []): Promise<void> {
  const args = ['-t', 'tmpfs'];
  if (options.length) args.push('-o', options.join(','));
  args.push('tmpfs', target);
  await runProgram('mount', args).catch((e: unknown) => {
    throw e instanceof HostCommandError ? new HostCommandError('mount', [`tmpfs on ${target}`], e.status, e.stderr) : e;
  });
}

/** umount(8) messages meaning "nothing to do". */
function notMounted(stderr: string): boolean {
  return /not mounted|no mount point specified|No such file or directory/.test(stderr);
}

/**
 * Unmount `targets` (given deepest first) with one umount(8) call. Targets that are not
 * mounted are ignored; targets still busy are detached lazily (umount -l) unless `lazy` is
 * false. Throws HostCommandError only when a target stays mounted.
 */
export async function unmount(targets: string | string[], o: { lazy?: boolean } = {}): Promise<void> {
  const list = (Array.isArray(targets) ? targets : [targets]).map((t) => resolve(t));
  if (list.length === 0) return;
  const r = await runProgram('umount', list, { allowFailure: true });
  if (r.status === 0) return;
  // Some failed: find the ones still mounted and retry them (lazily when allowed).
  const remaining = list.filter((t) => isMountpoint(t));
  if (remaining.length === 0) return;
  if (o.lazy === false) {
    if (notMounted(r.stderr)) return;
    throw new HostCommandError('umount', remaining, r.status, r.stderr, 'a process may still use it');
  }
  const lazy = await runProgram('umount', ['-l', ...remaining], { allowFailure: true });
  if (lazy.status !== 0 && remaining.some((t) => isMountpoint(t))) {
    throw new HostCommandError('umount', ['-l', ...remaining], lazy.status, lazy.stderr);
  }
}

/** Unmount everything mounted at or below `dir`, deepest first. Returns how many mounts it removed. */
export async function unmountAll(dir: string, o: { lazy?: boolean } = {}): Promise<number> {
  const mounts = mountsUnder(dir);
  if (mounts.length === 0) return 0;
  // A point mounted several times needs one umount per layer; umount(8) takes repeats.
  await unmount(
    mounts.map((m) => m.mountPoint),
    o,
  );
  return mounts.length;
}
