/**
 * Copying files into and out of a container's root (docker cp; the daemon's /containers/{id}/archive).
 *
 * Out: the path is resolved inside the container's root (rootpath.ts) and tarred (node-tar, symlinks not
 * followed). In: the archive is first extracted into a private scratch directory with hull's hardened layer
 * extractor (image/unpack.ts: `..` entries, entries below a symlink, device nodes are skipped), then merged into
 * the root one entry at a time: every destination directory is resolved inside the root (a symlink already in
 * the container, `evil -> /etc` or `evil -> ../../..`, is followed as the container would see it, never onto the
 * host), files are created with O_EXCL|O_NOFOLLOW after whatever sat there is removed (never followed).
 *
 * A running (or paused, or created) container has its root mounted; a stopped one's is mounted for the copy at a
 * private mount point (its layers and writable layer, as a run mounts them) and unmounted after it.
 * What rootpath.ts says holds here too: processes inside a running container can swap a checked directory for a
 * link between the check and the use; docker (before it paused containers for cp) had the same window.
 */
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmdirSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ConflictError, InvalidArgumentError, NotFoundError, StateError } from '../common/errors.js';
import { instancePaths } from '../common/paths.js';
import { hostRoot, resolveInRootOps } from '../common/rootpath.js';
import { isMountpoint, unmount } from '../host/mount.js';
import { mountStoppedRoot } from '../container/rootfs.js';
import { extractArchive } from '../image/unpack.js';
import type { Engine } from './engine.js';
import { refresh } from './lifecycle/exit.js';
import type { InstanceRecord } from './store.js';

/** The archive extractor's rules for other archives the front ends receive (a build context). */
export { extractArchive } from '../image/unpack.js';

/**
 * Run `fn` on the host path of a container's root, whatever its state (docker cp works on stopped containers):
 * the mounted root of a running, paused or created one; else the root mounted for the call at a private mount
 * point under the instance's directory, unmounted after it (also when `fn` fails).
 */
export async function withContainerRoot<T>(
  engine: Engine,
  rec: InstanceRecord,
  fn: (root: string) => Promise<T>,
): Promise<T> {
  const cur = await refresh(engine, rec);
  if (!cur) throw new NotFoundError(`container ${rec.name} was removed`);
  const root = instancePaths(engine.context(cur).dir).rootfs;
  if (isMountpoint(root)) return fn(root);
  if (cur.state === 'running' || cur.state === 'paused')
    throw new ConflictError(`the root of container ${rec.name} is not mounted: restart it and copy again`);
  const ctx = await engine.contextWithLayers(cur);
  const target = mkdtempSync(join(ctx.dir, 'cp-'));
  try {
    await mountStoppedRoot(ctx, target);
    try {
      return await fn(target);
    } finally {
      await unmount(target);
    }
  } finally {
    try {
      rmdirSync(target);
    } catch {
      // still mounted (the unmount failed and said so): never removed recursively
    }
  }
}

/** Whether the instance's root is a file system on the host (a container's overlay; a VM's is a disk image). */
export function hasHostRoot(engine: Engine, rec: InstanceRecord): boolean {
  return existsSync(instancePaths(engine.context(rec).dir).upper);
}

/** A container's whole root file system as a tar (docker export), running or stopped, written to `out`. */
export async function exportContainer(engine: Engine, rec: InstanceRecord, out: NodeJS.WritableStream): Promise<void> {
  if (!hasHostRoot(engine, rec))
    throw new StateError(
      `cannot export ${rec.name}: its root is not a file system on the host (a VM's is a disk image: copy files out with hull cp)`,
    );
  await withContainerRoot(engine, rec, async (root) => {
    const { create } = await import('tar');
    const tar = create({ cwd: root, follow: false, portable: false }, ['.']) as unknown as NodeJS.ReadableStream;
    await pipeline(tar, out);
  });
}

/**
 * Rename the entries of a tar stream: `from` (the top entry's name; '.' for every entry) becomes `to` ('.': the
 * entries land in the extraction directory itself), the names and hard links below it too (docker's
 * RebaseArchiveEntries). Other entries pass unchanged; with `to` '.' the top directory's own entry is dropped.
 */
export async function rebaseTar(
  input: NodeJS.ReadableStream,
  from: string,
  to: string,
): Promise<NodeJS.ReadableStream> {
  if (from === to) return input;
  const { Parser, Pack } = await import('tar');
  const norm = (p: string): string =>
    p
      .replace(/^(\.\/)+/, '')
      .replace(/\/+$/, '')
      .replace(/^\.$/, '');
  const map = (p: string): string => {
    const n = norm(p);
    const slash = p.endsWith('/') ? '/' : '';
    let rest: string | null;
    if (from === '.') rest = n;
    else if (n === from) rest = '';
    else if (n.startsWith(`${from}/`)) rest = n.slice(from.length + 1);
    else return p;
    if (rest === '') return to === '.' ? './' : `${to}${slash}`;
    return `${to === '.' ? '.' : to}/${rest}`;
  };
  const pack = new Pack({ portable: false });
  const parser = new Parser({
    onReadEntry: (e) => {
      e.path = map(e.path);
      if (e.path === './') {
        // the contents go into an existing directory: its own owner and mode stay
        e.resume();
        return;
      }
      if (e.type === 'Link' && e.linkpath) e.linkpath = map(e.linkpath);
      if (e.header) {
        e.header.path = e.path;
        if (e.type === 'Link') e.header.linkpath = e.linkpath;
      }
      pack.add(e);
    },
  });
  parser.on('end', () => pack.end());
  parser.on('error', (err: Error) => pack.emit('error', err));
  (input as NodeJS.ReadableStream).on('error', (err: Error) => pack.emit('error', err));
  input.pipe(parser as unknown as NodeJS.WritableStream);
  return pack as unknown as NodeJS.ReadableStream;
}

/** What `stat` says of a path in a container (docker's X-Docker-Container-Path-Stat). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits (docker's clients read them): permissions plus type bits */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Go's os.FileMode of a stat (ModeDir 1<<31, ModeSymlink 1<<27, setuid 1<<23, setgid 1<<22, sticky 1<<20). */
function goMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += 2 ** 31;
  if (st.isSymbolicLink()) m += 2 ** 27;
  if (st.isFIFO()) m += 2 ** 25;
  if (st.isSocket()) m += 2 ** 24;
  if (st.mode & 0o4000) m += 2 ** 23;
  if (st.mode & 0o2000) m += 2 ** 22;
  if (st.mode & 0o1000) m += 2 ** 20;
  return m;
}

/**
 * `path` in the container's root: its root-relative resolution and stat. The last component is a symlink's own
 * unless the path ends with `/` or `/.` (docker's rule).
 */
export function statInRoot(root: string, path: string): { rel: string; stat: PathStat; st: Stats } {
  if (!path.startsWith('/')) throw new InvalidArgumentError(`the path "${path}" must be absolute`);
  const follow = path.endsWith('/') || path.endsWith('/.');
  const rel = resolveInRootOps(hostRoot(root), path, follow);
  const abs = rel === '' ? root : join(root, rel);
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch {
    throw new NotFoundError(`Could not find the file ${path} in container`);
  }
  let linkTarget = '';
  if (st.isSymbolicLink()) {
    const t = resolveInRootOps(hostRoot(root), rel, true);
    linkTarget = `/${t}`;
  }
  return {
    rel,
    st,
    stat: {
      name: rel === '' ? '/' : basename(rel),
      size: st.size,
      mode: goMode(st),
      mtime: st.mtime.toISOString(),
      linkTarget,
    },
  };
}

/** A tar stream of `rel` (root-relative, resolved) named by its base name; directories recursively. */
export async function tarOut(root: string, rel: string): Promise<NodeJS.ReadableStream> {
  const { create } = await import('tar');
  const parent = rel === '' ? root : join(root, dirname(rel));
  const name = rel === '' ? '.' : basename(rel);
  return create({ cwd: parent, follow: false, portable: false, noDirRecurse: false }, [
    name,
  ]) as unknown as NodeJS.ReadableStream;
}

/** What {@link copyIn} did. */
export interface CopyInResult {
  skipped: number;
  warnings: string[];
}

/**
 * Extract the tar archive `file` into the container's root at `path` (an existing directory in the container).
 * `noOverwriteDirNonDir`: refuse to replace a directory with a non-directory or the reverse (docker's flag).
 * `scratch` is a private empty directory on hull's root (removed by the caller). `owner`: who owns what is
 * copied (docker cp without -a: the container's root); by default the archive's owners are kept.
 */
export async function copyIn(
  root: string,
  path: string,
  file: string,
  scratch: string,
  noOverwriteDirNonDir: boolean,
  owner?: { uid: number; gid: number },
): Promise<CopyInResult> {
  const dest = statInRoot(root, path.endsWith('/') ? path : `${path}/`);
  if (!dest.st.isDirectory()) throw new InvalidArgumentError(`extraction point ${path} is not a directory`);
  const tree = join(scratch, 'tree');
  mkdirSync(tree, { mode: 0o700 });
  const r = await extractArchive(file, tree, scratch);
  const ops = hostRoot(root);

  const place = (src: string, parentRel: string, name: string): void => {
    const st = lstatSync(src);
    let rel = parentRel === '' ? name : `${parentRel}/${name}`;
    let abs = join(root, rel);
    let have: Stats | null = ops.lstat(rel);
    if (st.isDirectory()) {
      if (have?.isSymbolicLink()) {
        // a link in the container: followed inside the root, as the container sees it
        const to = resolveInRootOps(ops, rel, true);
        const t = ops.lstat(to);
        if (t?.isDirectory()) {
          rel = to;
          abs = join(root, rel);
          have = t;
        }
      }
      if (have && !have.isDirectory()) {
        if (noOverwriteDirNonDir) throw new ConflictError(`cannot overwrite non-directory /${rel} with directory`);
        unlinkSync(abs);
        have = null;
      }
      if (!have) mkdirSync(abs, { mode: st.mode & 0o7777 });
      lchownSync(abs, owner?.uid ?? st.uid, owner?.gid ?? st.gid);
      for (const child of readdirSync(src)) place(join(src, child), rel, child);
      lutimesSync(abs, st.atime, st.mtime);
      return;
    }
    if (have) {
      if (have.isDirectory()) {
        if (noOverwriteDirNonDir) throw new ConflictError(`cannot overwrite directory /${rel} with non-directory`);
        rmSync(abs, { recursive: true, force: true });
      } else unlinkSync(abs);
    }
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(src), abs);
      lchownSync(abs, owner?.uid ?? st.uid, owner?.gid ?? st.gid);
      return;
    }
    if (!st.isFile()) return; // FIFOs and sockets are not copied in
    const out = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const inp = openSync(src, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = readSync(inp, buf, 0, buf.length, null);
        if (n === 0) break;
        for (let off = 0; off < n; ) off += writeSync(out, buf, off, n - off);
      }
      fchownSync(out, owner?.uid ?? st.uid, owner?.gid ?? st.gid);
      fchmodSync(out, st.mode & 0o7777);
      futimesSync(out, st.atime, st.mtime);
    } finally {
      closeSync(inp);
      closeSync(out);
    }
  };
  for (const child of readdirSync(tree)) place(join(tree, child), dest.rel, child);
  return r;
}

/** One entry of docker's `diff`: Kind 0 changed, 1 added, 2 deleted. */
export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/**
 * What a container changed in its root (docker diff), from its overlay's writable layer: a whiteout (a 0:0
 * character device) is a deletion, a path the image's layers also have is a change, any other one an addition.
 * Works on stopped containers too (the writable layer is a plain directory).
 */
export async function containerChanges(engine: Engine, rec: InstanceRecord): Promise<Change[]> {
  const upper = instancePaths(engine.context(rec).dir).upper;
  const layers = (await engine.contextWithLayers(rec)).layers;
  const inImage = (rel: string) => layers.some((l) => lstatOrNull(join(l, rel)) !== null);
  const out: Change[] = [];
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(rel === '' ? upper : join(upper, rel)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(upper, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: `/${r}`, Kind: 2 });
        continue;
      }
      const existed = inImage(r);
      out.push({ Path: `/${r}`, Kind: existed ? 0 : 1 });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
