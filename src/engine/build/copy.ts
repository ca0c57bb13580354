/**
 * COPY/ADD for `hull build`: expand the sources (wildcards, .containerignore), apply docker's
 * directory rules (a directory source copies its contents; a file into a directory destination keeps
 * its name), ownership (--chown, else root for context files, kept for --from and archives) and
 * --chmod, and turn it all into layer entries, with parent directories carried over from the image so
 * a layer never changes their metadata. The builder hashes the entries for the cache and tars them.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { hostRoot, resolveInRootOps, type RootOps } from '../../common/rootpath.js';
import type { LayerEntry, LayerView } from '../../image/diff.js';
import { parseGroup, parsePasswd } from '../../container/users.js';

/**
 * Where COPY reads from: the context, another stage's or image's tree, or an extracted archive.
 * Paths are resolved inside the source's root as docker does (BuildKit's fs.RootPath): a symlink
 * on the way is followed as if the root were `/`, so `etcdir -> /etc` makes `etcdir/shadow` name
 * `<root>/etc/shadow`, never the host's file. `stat` looks at the last component itself (a symlink
 * found while walking a tree is copied as a symlink).
 */
export interface SourceFs {
  stat(rel: string): { abs: string; stat: Stats } | null;
  readdir(rel: string): string[];
  /** `rel` with every symlink (the last one too) resolved inside the root */
  resolve(rel: string): string;
  /** keep the sources' owners (true for --from and archives; context files become root's) */
  keepOwners: boolean;
}

/** A SourceFs over `ops`, with directory resolutions remembered (a tree walk asks for each parent). */
function rootFs(
  ops: RootOps,
  stat: (resolved: string) => { abs: string; stat: Stats } | null,
  list: (resolved: string) => string[],
  keepOwners: boolean,
  label: string,
): SourceFs {
  const dirs = new Map<string, string>();
  const resolveDir = (rel: string): string => {
    let r = dirs.get(rel);
    if (r === undefined) {
      r = resolveInRootOps(ops, rel, true, `${rel} in ${label}`);
      dirs.set(rel, r);
    }
    return r;
  };
  const split = (rel: string): string => {
    const clean = cleanSource(rel);
    const i = clean.lastIndexOf('/');
    if (i < 0) return clean;
    const parent = resolveDir(clean.slice(0, i));
    return parent === '' ? clean.slice(i + 1) : `${parent}/${clean.slice(i + 1)}`;
  };
  return {
    keepOwners,
    stat: (rel) => stat(split(rel)),
    readdir: (rel) => list(resolveDir(cleanSource(rel))),
    resolve: (rel) => resolveDir(cleanSource(rel)),
  };
}

/**
 * A plain directory (the build context, with its ignore matcher, or an extracted archive). An
 * ignored entry is not there: it is neither found nor followed (a symlink that is ignored leads
 * nowhere), as in the context docker sends; directories are walked through (an exception below an
 * ignored directory can bring a file back).
 */
export function dirFs(dir: string, ignored: (rel: string) => boolean = () => false, keepOwners = false): SourceFs {
  const host = hostRoot(dir);
  const ops: RootOps = {
    lstat(rel) {
      const st = host.lstat(rel);
      return st && rel !== '' && !st.isDirectory() && ignored(rel) ? null : st;
    },
    readlink: host.readlink,
  };
  return rootFs(
    ops,
    (r) => {
      if (r !== '' && ignored(r)) return null;
      const st = host.lstat(r);
      return st ? { abs: r === '' ? dir : join(dir, r), stat: st } : null;
    },
    (r) => {
      try {
        return readdirSync(r === '' ? dir : join(dir, r))
          .filter((n) => !ignored(r === '' ? n : `${r}/${n}`))
          .sort();
      } catch {
        return [];
      }
    },
    keepOwners,
    'the build context',
  );
}

/** Look at a merged layer tree as a root. */
function viewOps(view: LayerView): RootOps {
  return {
    lstat: (rel) => view.lookup(rel)?.stat ?? null,
    readlink: (rel) => readlinkSync(view.lookup(rel)!.abs),
  };
}

/** A merged layer tree (COPY --from). */
export function viewFs(view: LayerView): SourceFs {
  return rootFs(
    viewOps(view),
    (r) => view.lookup(r),
    (r) => view.readdir(r),
    true,
    'the source stage or image',
  );
}

const GLOB = /[*?[]/;

function globRegex(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = part.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = part.slice(i + 1, end);
      if (cls.startsWith('!') || cls.startsWith('^')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < part.length) {
      re += part[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** Clean a source as written into a path relative to the source root ('' for the root itself). */
export function cleanSource(src: string): string {
  return posix
    .normalize('/' + src)
    .slice(1)
    .replace(/\/$/, '');
}

/** The source paths `pattern` names (sorted); empty when nothing matches. */
export function expandSource(fs: SourceFs, pattern: string): string[] {
  const clean = cleanSource(pattern);
  if (!GLOB.test(clean)) return fs.stat(clean) ? [clean] : [];
  let cur = [''];
  for (const part of clean.split('/')) {
    const next: string[] = [];
    for (const base of cur) {
      if (!GLOB.test(part)) {
        const p = base ? `${base}/${part}` : part;
        if (fs.stat(p)) next.push(p);
        continue;
      }
      // a directory reached through a symlink is globbed too (resolved inside the root)
      const st = fs.stat(fs.resolve(base));
      if (!st?.stat.isDirectory()) continue;
      const re = globRegex(part);
      for (const n of fs.readdir(base)) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    cur = next;
  }
  return cur.sort();
}

/** --chown USER[:GROUP] → ids, names looked up in the image's /etc/passwd and /etc/group. */
export function resolveChown(spec: string, image: LayerView): { uid: number; gid: number } {
  const [u = '', g] = spec.split(':', 2);
  const read = (p: string): string => {
    const e = image.lookup(resolveInImage(image, p));
    if (!e || !e.stat.isFile()) return '';
    return readFileSync(e.abs, 'utf8');
  };
  let uid: number;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const entry = parsePasswd(read('etc/passwd')).find((p) => p.name === u);
    if (!entry)
      throw new NotFoundError(
        `--chown=${spec}: unable to find user ${u}: no matching entries in the image's /etc/passwd`,
      );
    uid = entry.uid;
  }
  let gid = uid;
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = parseGroup(read('etc/group')).find((x) => x.name === g);
      if (!entry)
        throw new NotFoundError(
          `--chown=${spec}: unable to find group ${g}: no matching entries in the image's /etc/group`,
        );
      gid = entry.gid;
    }
  }
  return { uid, gid };
}

/**
 * `rel` with symlinks in the image resolved, as the kernel would inside the container's root (absolute
 * targets start at the root, `..` stops there): `COPY x /bin/` on an image whose /bin links to usr/bin
 * must write usr/bin/x, or the layer's bin/ directory would hide the link. The last component is
 * resolved too unless `keepLast` (a file destination that is a symlink is replaced, as docker does).
 */
export function resolveInImage(image: LayerView, rel: string, keepLast = false): string {
  return resolveInRootOps(viewOps(image), rel, !keepLast, `/${cleanSource(rel)} in the image`);
}

/** One source to copy: where it is read from and its path there. */
export interface CopySource {
  fs: SourceFs;
  rel: string;
}

export interface CopyPlan {
  /** destination made absolute; a trailing '/' marks a directory */
  destPath: string;
  destIsDir: boolean;
  sources: CopySource[];
  owner?: { uid: number; gid: number };
  chmod?: number;
}

/**
 * The layer entries of a copy onto `image` (the stage's tree so far), sorted so parents come first.
 * Throws InvalidArgumentError for impossible destinations.
 */
export function planCopy(plan: CopyPlan, image: LayerView, now: Date): LayerEntry[] {
  const out = new Map<string, LayerEntry>();
  const asDir = resolveInImage(image, plan.destPath);
  const destIsDir = plan.destIsDir || plan.sources.length > 1 || (image.lookup(asDir)?.stat.isDirectory() ?? false);
  const dest = destIsDir ? asDir : resolveInImage(image, plan.destPath, true);

  const add = (fs: SourceFs, srcRel: string, destRel: string, top: boolean): void => {
    const s = fs.stat(srcRel)!;
    const st = s.stat;
    const uid = plan.owner?.uid ?? (fs.keepOwners ? st.uid : 0);
    const gid = plan.owner?.gid ?? (fs.keepOwners ? st.gid : 0);
    const mode = plan.chmod ?? st.mode & 0o7777;
    const base = { path: destRel, uid, gid, mtime: st.mtime };
    if (st.isDirectory()) {
      if (destRel !== '') {
        const existing = top ? image.lookup(destRel) : null;
        if (top && existing?.stat.isDirectory()) {
          const x = existing.stat;
          out.set(destRel, {
            path: destRel,
            type: 'dir',
            mode: x.mode & 0o7777,
            uid: plan.owner?.uid ?? x.uid,
            gid: plan.owner?.gid ?? x.gid,
            mtime: x.mtime,
          });
        } else {
          out.set(destRel, { ...base, type: 'dir', mode });
        }
      }
      // below a directory the image already has, its symlinks are followed (an image's bin -> usr/bin)
      const inImage = destRel === '' || (image.lookup(destRel)?.stat.isDirectory() ?? false);
      for (const n of fs.readdir(srcRel)) {
        const childSrc = srcRel === '' ? n : `${srcRel}/${n}`;
        let childDest = destRel === '' ? n : `${destRel}/${n}`;
        if (inImage) childDest = resolveInImage(image, childDest, !(fs.stat(childSrc)?.stat.isDirectory() ?? false));
        add(fs, childSrc, childDest, false);
      }
    } else if (st.isFile()) {
      out.set(destRel, { ...base, type: 'file', mode, size: st.size, source: s.abs });
    } else if (st.isSymbolicLink()) {
      out.set(destRel, { ...base, type: 'symlink', mode: st.mode & 0o7777, linkpath: readlinkSync(s.abs) });
    }
    // sockets, devices and FIFOs in a context are left out, as docker does
  };

  for (const src of plan.sources) {
    const st = src.fs.stat(src.rel)!.stat;
    if (st.isDirectory()) add(src.fs, src.rel, dest, true);
    else {
      if (dest === '' && !destIsDir)
        throw new InvalidArgumentError('cannot copy a file onto /: give a directory destination ending in /');
      add(
        src.fs,
        src.rel,
        destIsDir ? (dest === '' ? posix.basename(src.rel) : `${dest}/${posix.basename(src.rel)}`) : dest,
        true,
      );
    }
  }
  // parents: carried over from the image, or made (0755 root) when missing
  for (const p of [...out.keys()]) {
    let dir = posix.dirname(p);
    while (dir !== '.' && dir !== '' && !out.has(dir)) {
      const e = image.lookup(dir);
      if (e && !e.stat.isDirectory())
        throw new InvalidArgumentError(`cannot copy to /${p}: /${dir} is not a directory in the image`);
      out.set(
        dir,
        e
          ? {
              path: dir,
              type: 'dir',
              mode: e.stat.mode & 0o7777,
              uid: e.stat.uid,
              gid: e.stat.gid,
              mtime: e.stat.mtime,
            }
          : { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: now },
      );
      dir = posix.dirname(dir);
    }
  }
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 over the entries' paths, types, modes, owners, link targets and contents (not times). */
export async function hashEntries(entries: LayerEntry[]): Promise<string> {
  const h = createHash('sha256');
  for (const e of entries) {
    h.update(`${e.type}\0${e.path}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.linkpath ?? ''}\0${e.size ?? 0}\0`);
    if (e.type === 'file' && e.source && (e.size ?? 0) > 0) {
      // small files in one read (a stream per file costs more than the read: a context of many small sources)
      if ((e.size ?? 0) <= 1 << 20) h.update(readFileSync(e.source));
      else for await (const chunk of createReadStream(e.source, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
    }
    h.update('\n');
  }
  return 'sha256:' + h.digest('hex');
}
