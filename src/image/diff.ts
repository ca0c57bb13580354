/**
 * Layer tars made by `hull build`: a tar writer for explicit entry lists (ownership, modes and times
 * exactly as given, OCI whiteouts), the diff of an overlayfs upper directory (overlay whiteouts —
 * character device 0/0 — and opaque directories — trusted.overlay.opaque=y — turned back into OCI
 * `.wh.` entries), and a read-only merged view of extracted layer directories (lowest first) that
 * resolves paths through whiteouts and opaque directories without mounting anything.
 *
 * Not carried over from an upper directory: overlay redirect/metacopy xattrs (hull's build containers
 * never use metacopy; a renamed lower directory appears as its full new content plus a whiteout) and
 * xattrs other than file capabilities and user.* (see tar-xattrs.ts), which go into the layer as pax
 * SCHILY.xattr records.
 */
import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, posix } from 'node:path';
import { Header, Pax, type HeaderData } from 'tar';
import { runProgram } from '../host/proc.js';
import { HostSupportError } from '../common/errors.js';
import { carriedXattr, paxXattrHeader, type Xattrs } from './tar-xattrs.js';

export type LayerEntryType = 'file' | 'dir' | 'symlink' | 'link' | 'whiteout' | 'opaque' | 'fifo' | 'char' | 'block';

/** One entry of a layer tar. `path` is relative to the root, without leading or trailing slash. */
export interface LayerEntry {
  path: string;
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  /** file: its size; content is read from `source` */
  size?: number;
  source?: string;
  /** symlink target, or hardlink target path (relative to the root) */
  linkpath?: string;
  /** carried extended attributes (file capabilities, user.*), see tar-xattrs.ts */
  xattrs?: Xattrs;
  devmaj?: number;
  devmin?: number;
}

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);
const OPAQUE_XATTR = 'trusted.overlay.opaque';

function headerBlocks(d: HeaderData, xattrs?: Xattrs): Buffer[] {
  const h = new Header(d);
  const out: Buffer[] = [];
  const needsPax = h.encode();
  if (xattrs && Object.keys(xattrs).length) {
    // one pax header with the xattrs and every long field (a second one would hide the first from readers)
    out.push(
      paxXattrHeader(
        {
          path: d.path!,
          ...(d.linkpath ? { linkpath: d.linkpath } : {}),
          size: d.size ?? 0,
          uid: d.uid ?? 0,
          gid: d.gid ?? 0,
          mtime: d.mtime ?? new Date(0),
        },
        xattrs,
      ),
    );
  } else if (needsPax) {
    out.push(
      new Pax({ path: d.path, linkpath: d.linkpath, size: d.size, uid: d.uid, gid: d.gid, mtime: d.mtime }).encode(),
    );
  }
  out.push(h.block!);
  return out;
}

/** The tar stream of `entries`, in the given order (parents must come before children). */
export async function* layerTar(entries: Iterable<LayerEntry>): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const base = { uid: e.uid, gid: e.gid, mtime: e.mtime, mode: e.mode & 0o7777, uname: '', gname: '' };
    switch (e.type) {
      case 'dir':
        yield* headerBlocks({ ...base, path: e.path + '/', type: 'Directory', size: 0 }, e.xattrs);
        break;
      case 'symlink':
        yield* headerBlocks({ ...base, path: e.path, type: 'SymbolicLink', linkpath: e.linkpath, size: 0 });
        break;
      case 'link':
        yield* headerBlocks({ ...base, path: e.path, type: 'Link', linkpath: e.linkpath, size: 0 });
        break;
      case 'fifo':
        yield* headerBlocks({ ...base, path: e.path, type: 'FIFO', size: 0 });
        break;
      case 'char':
      case 'block':
        yield* headerBlocks({
          ...base,
          path: e.path,
          type: e.type === 'char' ? 'CharacterDevice' : 'BlockDevice',
          size: 0,
          devmaj: e.devmaj ?? 0,
          devmin: e.devmin ?? 0,
        });
        break;
      case 'whiteout': {
        const dir = posix.dirname(e.path);
        const p = (dir === '.' ? '' : dir + '/') + '.wh.' + posix.basename(e.path);
        yield* headerBlocks({ uid: 0, gid: 0, mode: 0, mtime: e.mtime, path: p, type: 'File', size: 0 });
        break;
      }
      case 'opaque':
        yield* headerBlocks({
          uid: 0,
          gid: 0,
          mode: 0,
          mtime: e.mtime,
          path: e.path + '/.wh..wh..opq',
          type: 'File',
          size: 0,
        });
        break;
      case 'file': {
        const size = e.size ?? 0;
        yield* headerBlocks({ ...base, path: e.path, type: 'File', size }, e.xattrs);
        let written = 0;
        if (size > 0) {
          for await (const chunk of createReadStream(e.source!, { start: 0, end: size - 1, highWaterMark: 1 << 20 })) {
            const b = chunk as Buffer;
            written += b.length;
            yield b;
          }
        }
        if (written !== size) throw new Error(`${e.source} changed size while it was being added to a layer`);
        const pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (pad) yield Buffer.alloc(pad);
        break;
      }
    }
  }
  yield ZERO;
}

/** Linux dev_t → major/minor. */
function devParts(rdev: number): { devmaj: number; devmin: number } {
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { devmaj: major, devmin: minor };
}

/** Decode getfattr's octal escapes (`\012`) in a file name. */
function unescapeGetfattr(s: string): string {
  return Buffer.from(
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
    'latin1',
  ).toString('utf8');
}

/**
 * Directories under `dir` (absolute paths) marked opaque with trusted.overlay.opaque=y. An entry with
 * an overlay redirect or metacopy xattr (a lower directory renamed with redirect_dir=on, a metadata-only
 * copy-up) cannot be turned into a layer from the upper directory alone: that is an error, not a
 * silently incomplete layer.
 */
async function upperXattrs(dir: string): Promise<{ opaque: Set<string>; carried: Map<string, Xattrs> }> {
  const r = await runProgram(
    'getfattr',
    [
      '-R',
      '-P',
      '--absolute-names',
      '-d',
      '-e',
      'base64',
      '-m',
      '^(trusted\\.overlay\\.(opaque|redirect|metacopy)|security\\.capability|user\\..+)$',
      '--',
      dir,
    ],
    {
      allowFailure: true,
      hint: 'building images needs the getfattr program (Debian package attr)',
    },
  );
  const opaque = new Set<string>();
  const carried = new Map<string, Xattrs>();
  let file: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      file = unescapeGetfattr(line.slice(8));
      continue;
    }
    const eq = line.indexOf('=');
    if (!file || eq <= 0) continue;
    const name = line.slice(0, eq);
    const raw = line.slice(eq + 1);
    const value = raw.startsWith('0s') ? Buffer.from(raw.slice(2), 'base64') : Buffer.from(raw.replace(/^"|"$/g, ''));
    if (name === OPAQUE_XATTR) {
      if (value.toString() === 'y') opaque.add(file);
    } else if (/^trusted\.overlay\.(redirect|metacopy)/.test(name)) {
      throw new HostSupportError(
        `cannot make a layer of ${file}: the overlay wrote a ${name} xattr (the kernel's overlay redirect_dir or metacopy feature is on); turn it off (overlay module parameters redirect_dir=off metacopy=off) to build images`,
      );
    } else if (carriedXattr(name)) {
      const m = carried.get(file) ?? {};
      m[name] = value;
      carried.set(file, m);
    }
  }
  return { opaque, carried };
}

function entryFromStat(rel: string, abs: string, st: Stats): LayerEntry | null {
  const base = { path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isDirectory()) return { ...base, type: 'dir' };
  if (st.isFile()) return { ...base, type: 'file', size: st.size, source: abs };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkpath: readlinkSync(abs) };
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  if (st.isCharacterDevice()) return { ...base, type: 'char', ...devParts(st.rdev) };
  if (st.isBlockDevice()) return { ...base, type: 'block', ...devParts(st.rdev) };
  return null; // sockets
}

/**
 * The entries of an overlayfs upper directory as an OCI layer: whiteouts for char 0/0 devices, an
 * opaque marker after each opaque directory, hard links within the layer as tar links. `skip` holds
 * relative paths left out (mount points the runtime created, e.g. etc/hosts).
 */
export async function upperDirEntries(upper: string, skip: ReadonlySet<string> = new Set()): Promise<LayerEntry[]> {
  const { opaque, carried } = await upperXattrs(upper);
  const out: LayerEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = (relDir: string): void => {
    const absDir = relDir === '' ? upper : join(upper, relDir);
    for (const name of readdirSync(absDir).sort()) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (skip.has(rel)) continue;
      const abs = join(absDir, name);
      const st = lstatSync(abs);
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ path: rel, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: st.mtime });
        continue;
      }
      if (st.isFile() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first !== undefined) {
          out.push({
            path: rel,
            type: 'link',
            linkpath: first,
            mode: st.mode & 0o7777,
            uid: st.uid,
            gid: st.gid,
            mtime: st.mtime,
          });
          continue;
        }
        inodes.set(key, rel);
      }
      const e = entryFromStat(rel, abs, st);
      if (!e) continue;
      const xattrs = carried.get(abs);
      if (xattrs && (e.type === 'file' || e.type === 'dir')) e.xattrs = xattrs;
      out.push(e);
      if (st.isDirectory()) {
        if (opaque.has(abs)) out.push({ path: rel, type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: st.mtime });
        walk(rel);
      }
    }
  };
  walk('');
  return out;
}

/** A path found in a {@link LayerView}: where it lives on disk and its stat. */
export interface ViewEntry {
  abs: string;
  stat: Stats;
}

/**
 * The merged file tree of extracted layer directories (lowest first), read without mounting: upper
 * layers win, whiteouts hide, opaque directories hide what is below. Symlinks are not followed.
 */
export class LayerView {
  /**
   * Whether a layer directory is opaque, by path, for every view of the process: extracted layers do not change
   * (a build's steps view the same lower layers again and again, and each answer costs a getfattr process).
   */
  private static readonly opaqueCache = new Map<string, boolean>();
  constructor(readonly layers: readonly string[]) {}

  private isOpaque(abs: string): boolean {
    const cache = LayerView.opaqueCache;
    let v = cache.get(abs);
    if (v === undefined) {
      const r = spawnSync('getfattr', ['--only-values', '-h', '-n', OPAQUE_XATTR, '--', abs], { encoding: 'utf8' });
      v = r.status === 0 && r.stdout === 'y';
      if (cache.size >= 10_000) cache.clear();
      cache.set(abs, v);
    }
    return v;
  }

  private static lst(p: string): Stats | null {
    try {
      return lstatSync(p);
    } catch {
      return null;
    }
  }

  /** The entry at `rel` ('' or '.' is the root), or null. */
  lookup(rel: string): ViewEntry | null {
    const parts = posix
      .normalize('/' + rel)
      .split('/')
      .filter(Boolean);
    if (parts.length === 0) {
      const top = this.layers[this.layers.length - 1];
      return top ? { abs: top, stat: lstatSync(top) } : null;
    }
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      let hidden = false;
      // an ancestor that is a whiteout or a non-directory in this layer hides the path
      for (let k = 1; k <= parts.length; k++) {
        const p = join(layer, ...parts.slice(0, k));
        const st = LayerView.lst(p);
        if (!st) break;
        if (st.isCharacterDevice() && st.rdev === 0) return null;
        if (k === parts.length) return { abs: p, stat: st };
        if (!st.isDirectory()) return null;
        if (i > 0 && this.isOpaque(p)) {
          hidden = true;
          // the path below an opaque dir must be in this layer; it was not (loop continues to check)
        }
      }
      if (hidden) return null;
    }
    return null;
  }

  /** Names in the directory `rel` (sorted). */
  readdir(rel: string): string[] {
    const parts = posix
      .normalize('/' + rel)
      .split('/')
      .filter(Boolean);
    const names = new Set<string>();
    const gone = new Set<string>();
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const p = join(this.layers[i]!, ...parts);
      const st = LayerView.lst(p);
      if (!st) continue;
      if (!st.isDirectory()) break;
      for (const n of readdirSync(p)) {
        if (names.has(n) || gone.has(n)) continue;
        const c = lstatSync(join(p, n));
        if (c.isCharacterDevice() && c.rdev === 0) gone.add(n);
        else names.add(n);
      }
      if (i > 0 && this.isOpaque(p)) break;
    }
    return [...names].sort();
  }
}
