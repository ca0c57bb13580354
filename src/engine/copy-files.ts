/**
 * `hull cp [-a] [-L] SRC DST` (docker cp): one side names an instance (`NAME:PATH`; a host path with a colon in its
 * first part is written ./a:b), the other a host path, or `-` for a tar stream on stdin or stdout.
 *
 * Files and directories travel as tar streams whose top entry is renamed for the destination (docker's rules):
 * - SRC a file: DST a directory gets DST/basename(SRC); an existing file is replaced; a new DST is created (its
 *   parent must exist; a DST ending in `/` must be an existing directory);
 * - SRC a directory: DST an existing directory gets SRC in it, or only SRC's contents when SRC ends with `/.`;
 *   a new DST becomes a copy of SRC; DST a file is an error;
 * - SRC ending in `/` (or `/.`) must be a directory; -L follows SRC when it is a symlink (only SRC itself);
 * - `-` as SRC: a tar from stdin, extracted into the directory DST; as DST: the tar of SRC on stdout.
 * Ownership: without -a, what is copied belongs to the destination's root (in an instance) or to the user running
 * hull (on the host); with -a the archive's owners are kept. Permission bits are always kept.
 *
 * The instance's side: a container's root on the host, running or stopped (engine/cp.ts: resolved inside the root,
 * never following a symlink onto the host); a VM from an image (hull's agent) through `hull exec` of `tar` in the
 * guest (busybox's); a full OS VM through its QEMU guest agent, regular files only (src/vm/guest-ops.ts).
 */
import {
  createReadStream,
  createWriteStream,
  lstatSync,
  mkdirSync,
  realpathSync,
  rmSync,
  type Stats,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HostSupportError, InvalidArgumentError, NotFoundError, StateError } from '../common/errors.js';
import type { InstanceContext, InstanceDriver } from '../common/instance.js';
import { hostRoot, resolveInRootOps } from '../common/rootpath.js';
import { copyIn, hasHostRoot, rebaseTar, tarOut, withContainerRoot } from './cp.js';
import type { Engine } from './engine.js';
import { refresh } from './lifecycle/exit.js';

export interface CopyOptions {
  /** -a: keep the archive's owners */
  archive?: boolean;
  /** -L: follow SRC when it is a symlink */
  followLink?: boolean;
  /** where `-` reads and writes */
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
}

/** What cp needs to know of a path: missing (null), a directory, or anything else. */
type Kind = 'dir' | 'other' | null;

/** One instance's files, as cp reaches them. */
interface InstanceSide {
  /** the path's kind; its last component followed when `follow` */
  kind(path: string, follow: boolean): Promise<Kind>;
  /** a tar of `path` (a symlink followed when `follow`), and the name of its top entry */
  tarOut(path: string, follow: boolean): Promise<{ stream: NodeJS.ReadableStream; base: string }>;
  /** extract the tar file `file` into the existing directory `dir` */
  tarIn(dir: string, file: string, keepOwners: boolean): Promise<void>;
}

function split(arg: string): { instance: string; path: string } | null {
  const i = arg.indexOf(':');
  if (i <= 0 || arg.startsWith('/') || arg.startsWith('.') || arg.slice(0, i).includes('/')) return null;
  return { instance: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** The name a path's last component has (`/a/b/.` and `/a/b/`: b; `/`: '.'). */
function baseName(path: string): string {
  const p = path.replace(/(\/\.)+$/, '').replace(/\/+$/, '');
  return p === '' || p === '.' ? '.' : basename(p);
}

const dirSuffix = (p: string): boolean => p.endsWith('/') || p.endsWith('/.');
const contentsOnly = (p: string): boolean => p.endsWith('/.') || p === '.';

/**
 * Where a source of kind `src` lands for the destination `dst` (its kind `have`, its parent's `parent`):
 * the directory to extract into and the name the source's top entry takes there.
 */
function placement(
  srcPath: string,
  src: Kind,
  dst: string,
  have: Kind,
  parent: () => Promise<Kind>,
  where: string,
): Promise<{ dir: string; name: string }> | { dir: string; name: string } {
  if (have === 'dir') return { dir: dst, name: src === 'dir' && contentsOnly(srcPath) ? '.' : baseName(srcPath) };
  if (have === 'other') {
    if (src === 'dir') throw new InvalidArgumentError(`cannot copy a directory to a file: ${where}${dst} is a file`);
    if (dst.endsWith('/')) throw new InvalidArgumentError(`${where}${dst} is not a directory`);
    return { dir: dirname(dst), name: basename(dst) };
  }
  if (dst.endsWith('/') && src !== 'dir')
    throw new NotFoundError(`the destination directory ${where}${dst} does not exist`);
  const trimmed = dst.replace(/\/+$/, '');
  return parent().then((k) => {
    if (k !== 'dir')
      throw new NotFoundError(`the parent directory of ${where}${dst} does not exist (${where}${dirname(trimmed)})`);
    return { dir: dirname(trimmed), name: basename(trimmed) };
  });
}

function hostKind(path: string, follow: boolean): Kind {
  let st: Stats;
  try {
    st = follow ? statSync(path) : lstatSync(path);
  } catch {
    return null;
  }
  return st.isDirectory() ? 'dir' : 'other';
}

/** Copy between the host and an instance (see the module's comment). */
export async function copyFiles(engine: Engine, src: string, dst: string, o: CopyOptions = {}): Promise<void> {
  const from = src === '-' ? null : split(src);
  const to = dst === '-' ? null : split(dst);
  if ((from === null) === (to === null))
    throw new InvalidArgumentError(
      'hull cp copies between the host and an instance: give exactly one side as INSTANCE:PATH (e.g. hull cp c1:/etc/hostname .)',
    );
  const side = (from ?? to)!;
  // a relative path in the instance is relative to its root (docker's rule)
  if (!side.path.startsWith('/')) side.path = `/${side.path}`;
  const rec = await refresh(engine, engine.store.lookup(side.instance));
  if (!rec) throw new NotFoundError(`no such instance: ${side.instance}`);
  const ctx = engine.context(rec);

  const driver = engine.driver(rec.kind);
  if (ctx.config.vm?.disk) {
    // a full OS VM: regular files through its QEMU guest agent
    if (rec.state !== 'running')
      throw new StateError(`cannot copy files with ${rec.name}: it is ${rec.state} (hull start ${rec.name})`);
    if (src === '-' || dst === '-' || !driver.copyFileIn || !driver.copyFileOut)
      throw new HostSupportError(
        `hull cp with full OS VM ${rec.name} copies regular files through its QEMU guest agent, not tar streams (-)`,
      );
    if (from) await driver.copyFileOut(ctx, from.path, dst);
    else await driver.copyFileIn(ctx, o.followLink ? realpathSync(src) : src, to!.path);
    return;
  }

  const run = (s: InstanceSide) =>
    from ? copyOut(engine, s, rec.name, from.path, dst, o) : copyInto(engine, s, rec.name, src, to!.path, o);
  // a root on the host (a container's, running or stopped), or the instance's own tar through exec (a VM's)
  if (hasHostRoot(engine, rec)) await withContainerRoot(engine, rec, (root) => run(containerSide(engine, root)));
  else {
    if (rec.state !== 'running')
      throw new StateError(`cannot copy files with VM ${rec.name}: it is ${rec.state} (hull start ${rec.name})`);
    await run(execSide(driver, engine, ctx));
  }
}

async function copyOut(
  engine: Engine,
  side: InstanceSide,
  name: string,
  path: string,
  dst: string,
  o: CopyOptions,
): Promise<void> {
  const kind = await side.kind(path, !!o.followLink || dirSuffix(path));
  if (kind === null) throw new NotFoundError(`no such file or directory in ${name}: ${path}`);
  if (dirSuffix(path) && kind !== 'dir') throw new InvalidArgumentError(`${name}:${path} is not a directory`);
  const want = baseName(path);
  if (dst === '-') {
    const t = await side.tarOut(path, !!o.followLink);
    await pipeline(await rebaseTar(t.stream, t.base, want), o.stdout ?? process.stdout);
    return;
  }
  const target = resolve(dst) + (dst.endsWith('/') ? '/' : '');
  const at = await placement(
    path,
    kind,
    target,
    hostKind(target, true),
    async () => hostKind(dirname(target.replace(/\/+$/, '')), true),
    '',
  );
  const t = await side.tarOut(path, !!o.followLink);
  const stream = await rebaseTar(t.stream, t.base, at.name);
  // hull's hardened extractor into a scratch directory, then merged into place (engine/cp.ts): the archive's links
  // are kept as they are (an absolute target included) and nothing is written through one
  const scratch = engine.images.tempPath('.cp');
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  try {
    const file = `${scratch}/out.tar`;
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
    const work = `${scratch}/work`;
    mkdirSync(work, { mode: 0o700 });
    await copyIn(
      '/',
      at.dir,
      file,
      work,
      true,
      o.archive ? undefined : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function copyInto(
  engine: Engine,
  side: InstanceSide,
  name: string,
  src: string,
  path: string,
  o: CopyOptions,
): Promise<void> {
  const scratch = engine.images.tempPath('.cp');
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  try {
    const file = `${scratch}/in.tar`;
    if (src === '-') {
      const k = await side.kind(path, true);
      if (k !== 'dir')
        throw new InvalidArgumentError(
          `the destination ${name}:${path} must be an existing directory to extract a tar stream into`,
        );
      await pipeline(o.stdin ?? process.stdin, createWriteStream(file, { mode: 0o600 }));
      await side.tarIn(path, file, !!o.archive);
      return;
    }
    const kind = hostKind(src, !!o.followLink || dirSuffix(src));
    if (kind === null) throw new NotFoundError(`no such file or directory on the host: ${src}`);
    if (dirSuffix(src) && kind !== 'dir') throw new InvalidArgumentError(`${src} is not a directory`);
    const at = await placement(
      src,
      kind,
      path,
      await side.kind(path, true),
      () => side.kind(dirname(path.replace(/\/+$/, '') || '/'), true),
      `${name}:`,
    );
    // -L: SRC itself followed (only it); the tar's top entry is then renamed for the destination
    const real = o.followLink ? realpathSync(src) : resolve(src);
    const base = real === '/' ? '.' : basename(real);
    const { create } = await import('tar');
    const tar = create({ cwd: real === '/' ? '/' : dirname(real), follow: false, portable: false }, [
      base,
    ]) as unknown as NodeJS.ReadableStream;
    await pipeline(await rebaseTar(tar, base, at.name), createWriteStream(file, { mode: 0o600 }));
    await side.tarIn(at.dir, file, !!o.archive);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** `path` resolved inside a container's root (its last component followed when `follow`, or ending in / or /.). */
function inRoot(root: string, path: string, follow: boolean): { rel: string; st: Stats } | null {
  let rel: string;
  try {
    rel = resolveInRootOps(hostRoot(root), path, follow || dirSuffix(path));
  } catch {
    return null;
  }
  try {
    return { rel, st: lstatSync(rel === '' ? root : join(root, rel)) };
  } catch {
    return null;
  }
}

/** A container's root on the host (engine/cp.ts). */
function containerSide(engine: Engine, root: string): InstanceSide {
  return {
    async kind(path, follow) {
      const st = inRoot(root, path, follow);
      return st === null ? null : st.st.isDirectory() ? 'dir' : 'other';
    },
    async tarOut(path, follow) {
      const st = inRoot(root, path, follow);
      if (!st) throw new NotFoundError(`no such file or directory: ${path}`);
      return { stream: await tarOut(root, st.rel), base: st.rel === '' ? '.' : basename(st.rel) };
    },
    async tarIn(dir, file, keepOwners) {
      const scratch = engine.images.tempPath('.cp');
      mkdirSync(scratch, { recursive: true, mode: 0o700 });
      try {
        await copyIn(root, dir, file, scratch, true, keepOwners ? undefined : { uid: 0, gid: 0 });
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
  };
}

/** An instance reached through exec (a VM from an image, hull's agent): `sh` and `tar` (busybox's) run in it. */
function execSide(driver: InstanceDriver, engine: Engine, ctx: InstanceContext): InstanceSide {
  const exec = async (
    command: string[],
    stdin: NodeJS.ReadableStream | null,
    stdout: NodeJS.WritableStream,
  ): Promise<{ code: number; err: string }> => {
    const errs: Buffer[] = [];
    const stderr = new PassThrough();
    stderr.on('data', (b: Buffer) => errs.push(b));
    const code = await driver.exec(
      ctx,
      {
        command,
        env: [],
        tty: false,
        stdin: stdin !== null,
        privileged: false,
        detach: false,
        user: 'root',
        workdir: '/',
      },
      { stdin, stdout, stderr },
    );
    return { code, err: Buffer.concat(errs).toString().trim() };
  };
  const text = async (command: string[]): Promise<{ code: number; out: string; err: string }> => {
    const out: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => out.push(b));
    const r = await exec(command, null, sink);
    return { ...r, out: Buffer.concat(out).toString().trim() };
  };
  const failed = (what: string, r: { code: number; err: string }) =>
    new StateError(`${what} in VM ${ctx.name} failed (exit ${r.code}): ${r.err || 'no message'}`);
  return {
    async kind(path, follow) {
      const r = await text([
        'sh',
        '-c',
        'if [ "$2" = 0 ] && [ -L "$1" ]; then echo other; elif [ -d "$1" ]; then echo dir; elif [ -e "$1" ]; then echo other; else echo none; fi',
        'hull-cp',
        path,
        follow ? '1' : '0',
      ]);
      if (r.code !== 0) throw failed('checking the path', r);
      return r.out === 'dir' ? 'dir' : r.out === 'other' ? 'other' : null;
    },
    async tarOut(path, follow) {
      // the guest's tar into a file here first: its exit status says whether the whole tree was read
      const scratch = engine.images.tempPath('.cp');
      mkdirSync(scratch, { recursive: true, mode: 0o700 });
      const file = `${scratch}/out.tar`;
      try {
        const out = createWriteStream(file, { mode: 0o600 });
        const r = await exec(
          [
            'sh',
            '-c',
            'p=$1; if [ "$2" = 1 ]; then p=$(readlink -f "$p") || exit 1; fi; ' +
              'if [ "$p" = / ]; then echo . >&2; cd / && exec tar -c -f - .; fi; ' +
              'p=${p%/}; cd "$(dirname "$p")" && b=$(basename "$p") && echo "$b" >&2 && exec tar -c -f - "$b"',
            'hull-cp',
            path.replace(/(\/\.)+$/, '/'),
            follow ? '1' : '0',
          ],
          null,
          out,
        );
        await new Promise<void>((res, rej) => out.end(() => res()).once('error', rej));
        if (r.code !== 0) throw failed(`reading ${path}`, r);
        const base = r.err.split('\n')[0] || '.';
        const stream = createReadStream(file);
        stream.once('close', () => rmSync(scratch, { recursive: true, force: true }));
        return { stream, base };
      } catch (e) {
        rmSync(scratch, { recursive: true, force: true });
        throw e;
      }
    },
    async tarIn(dir, file, keepOwners) {
      const r = await exec(
        ['tar', '-x', ...(keepOwners ? [] : ['-o']), '-f', '-', '-C', dir],
        createReadStream(file),
        new PassThrough().resume(),
      );
      if (r.code !== 0) throw failed(`extracting into ${dir}`, r);
    },
  };
}
