/**
 * Resolution of a container's `user[:group]` against the image's /etc/passwd and /etc/group.
 *
 * The root filesystem is untrusted: its files may be symlinks pointing anywhere, including at host
 * files. Paths are therefore resolved component by component inside the root (an absolute link
 * target or `..` never leaves it), the final file is opened without following a link, and the opened
 * file's real path is checked to lie inside the root before a byte is read.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, readlinkSync, realpathSync, constants } from 'node:fs';
import { posix } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../common/errors.js';

/** The identity a container process runs with, as numeric ids inside the container. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /**
   * supplementary groups, as docker sets them: the primary gid, then those of /etc/group listing the user
   * (when no group was given), then the --group-add ones
   */
  additionalGids: number[];
  /** home directory from /etc/passwd, or "/" */
  home: string;
}

/** Largest id docker and runc accept (ids are 32-bit, and -1 is reserved). */
const MAX_ID = 2 ** 31 - 1;
/** The most symlinks followed while resolving one path, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;
/** passwd and group files larger than this are refused (an image could ship a huge one). */
const MAX_DB_SIZE = 16 * 1024 * 1024;

/** The real path of a root filesystem directory (hull's own path, trusted). */
function realRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch (e) {
    throw new NotFoundError(
      `root filesystem not found: ${root} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/**
 * Resolve `path` inside `root` as if `root` were `/`: symlinks are followed within the root and
 * `..` stops at it. Returns an absolute host path under the root's real path. Components that do not
 * exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string): string {
  const base = realRoot(root);
  let current = ''; // resolved so far, relative to base, with a leading '/'
  const pending = path.split('/');
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      current = posix.dirname(current || '/');
      if (current === '/') current = '';
      continue;
    }
    const next = `${current}/${part}`;
    let st;
    try {
      st = lstatSync(base + next);
    } catch {
      // Does not exist (or cannot be examined): keep the rest as written, without following anything.
      return base + posix.normalize([next, ...pending].join('/')).replace(/\/+$/, '');
    }
    if (!st.isSymbolicLink()) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS)
      throw new InvalidArgumentError(`too many levels of symbolic links resolving ${path} in ${root}`);
    const target = readlinkSync(base + next);
    if (target.startsWith('/')) current = '';
    pending.unshift(...target.split('/'));
  }
  return base + current;
}

/**
 * Read a regular file at `path` inside `root` (see {@link resolveInRoot}); null when it does not
 * exist. Refuses anything that is not a regular file, larger than `maxSize`, or that turns out (after
 * opening) to lie outside the root, which a concurrent rename inside a running container could cause.
 */
export function readFileInRoot(root: string, path: string, maxSize = MAX_DB_SIZE): Buffer | null {
  const base = realRoot(root);
  const resolved = resolveInRoot(root, path);
  let fd: number;
  try {
    fd = openSync(resolved, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'ELOOP')
      throw new InvalidArgumentError(`${path} in ${root} changed while being read (a symbolic link appeared)`);
    throw new InvalidArgumentError(`cannot open ${path} in ${root}: ${(e as Error).message}`);
  }
  try {
    const real = readlinkSync(`/proc/self/fd/${fd}`);
    if (real !== base && !real.startsWith(base === '/' ? '/' : `${base}/`)) {
      throw new InvalidArgumentError(`${path} in ${root} resolves outside the root filesystem; refusing to read it`);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InvalidArgumentError(`${path} in ${root} is not a regular file`);
    if (st.size > maxSize) throw new InvalidArgumentError(`${path} in ${root} is too large (${st.size} bytes)`);
    const buf = Buffer.alloc(Math.min(st.size, maxSize) + 1);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len >= buf.length) throw new InvalidArgumentError(`${path} in ${root} is too large`);
    }
    return buf.subarray(0, len);
  } finally {
    closeSync(fd);
  }
}

/** One line of /etc/passwd. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One line of /etc/group. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Fields of the colon-separated lines of a passwd or group file; blank lines and comments skipped. */
function records(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function parseId(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  const n = Number(s);
  return n <= MAX_ID ? n : null;
}

/** Parse /etc/passwd text; malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of records(text)) {
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (!f[0] || uid === null || gid === null) continue;
    out.push({ name: f[0], uid, gid, home: f[5] || '/' });
  }
  return out;
}

/** Parse /etc/group text; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of records(text)) {
    const gid = parseId(f[2]);
    if (!f[0] || gid === null) continue;
    out.push({
      name: f[0],
      gid,
      members: (f[3] ?? '')
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
    });
  }
  return out;
}

/** A numeric id as given by the user, or null for a name; ids out of range throw. */
function numericId(s: string, what: 'uid' | 'gid'): number | null {
  if (!/^\d+$/.test(s)) {
    if (/^-\d+$/.test(s)) throw new InvalidArgumentError(`invalid ${what} ${s}: ids must be in range 0-${MAX_ID}`);
    return null;
  }
  const n = Number(s);
  if (n > MAX_ID) throw new InvalidArgumentError(`invalid ${what} ${s}: ids must be in range 0-${MAX_ID}`);
  return n;
}

/**
 * Resolve a container user as docker does: `name`, `uid`, `name:group`, `uid:gid` (and mixes),
 * looked up in `rootfs`/etc/passwd and /etc/group. Numeric ids need no entry (a uid without one gets
 * gid 0 and home /). An empty user is root. The supplementary groups are docker's: the primary gid, the
 * groups of /etc/group listing the user (only when no group is given), then `groupAdd` (group names of
 * /etc/group or numeric gids). Unknown names throw NotFoundError.
 */
export function resolveUser(rootfs: string, user: string, groupAdd: readonly string[] = []): ResolvedUser {
  const spec = user.trim();
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? '' : spec.slice(colon + 1);

  let passwd: PasswdEntry[] | undefined;
  const passwdEntries = () => (passwd ??= parsePasswd(readFileInRoot(rootfs, '/etc/passwd')?.toString('utf8') ?? ''));
  let groups: GroupEntry[] | undefined;
  const groupEntries = () => (groups ??= parseGroup(readFileInRoot(rootfs, '/etc/group')?.toString('utf8') ?? ''));

  const wantedUid = userPart === '' ? 0 : numericId(userPart, 'uid');
  const entry =
    wantedUid === null
      ? passwdEntries().find((e) => e.name === userPart)
      : passwdEntries().find((e) => e.uid === wantedUid);
  if (wantedUid === null && !entry) {
    throw new NotFoundError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  const uid = wantedUid ?? entry!.uid;
  let gid = entry?.gid ?? 0;
  const home = entry?.home ?? '/';
  let memberOf: number[] = [];

  if (groupPart !== '') {
    const wantedGid = numericId(groupPart, 'gid');
    if (wantedGid !== null) {
      gid = wantedGid;
    } else {
      const group = groupEntries().find((g) => g.name === groupPart);
      if (!group) throw new NotFoundError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = group.gid;
    }
  } else if (entry) {
    memberOf = groupEntries()
      .filter((g) => g.members.includes(entry.name))
      .map((g) => g.gid);
  }
  const added = groupAdd.map((name) => {
    const group = groupEntries().find((g) => g.name === name || String(g.gid) === name);
    if (group) return group.gid;
    const n = numericId(name, 'gid');
    if (n === null) throw new NotFoundError(`unable to find group ${name}: no matching entries in group file`);
    return n;
  });
  const additionalGids = [...new Set([gid, ...memberOf, ...added])];
  return { uid, gid, additionalGids, home };
}
