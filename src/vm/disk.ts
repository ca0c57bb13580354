/**
 * Root disks of VMs. An image's layers become one ext4 filesystem image (`mkfs.ext4 -d` fills it from a
 * directory: the single layer itself, or a read-only overlay mount of all layers, which applies their
 * whiteouts), built once per image id and cached as <root>/vm/disks/<id>.ext4. Each VM then gets a qcow2
 * overlay over that base (`qemu-img create -b`): its writes stay in the instance dir, the base is only
 * ever opened read-only, and creating a VM's disk costs milliseconds.
 *
 * Concurrency: every builder works on its own temp file and link(2)s it into place; link never replaces,
 * so two concurrent first creates cannot swap a base from under an overlay made over the other's copy
 * (two mkfs runs never give identical images: UUIDs and times differ).
 */
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostCommandError, InvalidArgumentError } from '../common/errors.js';
import { mountOverlay, unmount } from '../host/mount.js';
import { runProgram } from '../host/proc.js';
import { qemuImgBinary, qemuImgCreateOverlay, qemuImgInfo } from '../host/qemu.js';

const MiB = 1024 * 1024;

function imageKey(imageId: string): string {
  return imageId.replace(/^sha256:/, '').slice(0, 64);
}

/** Disk usage of a tree in bytes (du counts blocks, as the filesystem will need). */
async function treeBytes(dir: string): Promise<number> {
  const r = await runProgram('du', ['-s', '-B1', '-x', dir]);
  return parseInt(r.stdout, 10) || 0;
}

/** Size of a new root filesystem: the content with room to grow (the file is sparse, so room is free). */
export function diskSizeFor(contentBytes: number): number {
  const want = Math.max(1024 * MiB, contentBytes * 2 + 512 * MiB);
  return Math.ceil(want / MiB) * MiB;
}

/**
 * The cached ext4 base image of an image (built when missing); `layers` lowest first.
 * `log` gets a status line when a build is needed.
 */
export async function ensureImageDisk(
  vmDir: string,
  imageId: string,
  layers: string[],
  log: (s: string) => void = () => undefined,
): Promise<string> {
  const dir = join(vmDir, 'disks');
  const path = join(dir, `${imageKey(imageId)}.ext4`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(dir, '.build-'));
  try {
    let tree: string;
    if (layers.length === 0) {
      tree = join(work, 'empty');
      mkdirSync(tree);
    } else if (layers.length === 1) {
      tree = layers[0]!;
    } else {
      tree = join(work, 'merged');
      mkdirSync(tree);
      await mountOverlay(tree, { lower: [...layers].reverse(), readOnly: true });
    }
    try {
      const size = diskSizeFor(await treeBytes(tree));
      log(`hull: building the VM root disk of ${imageId.slice(0, 19)} (ext4, ${Math.round(size / MiB)} MiB sparse)`);
      const tmp = join(work, 'disk.ext4');
      // -E root_owner: the root directory's owner from the tree; no lazy init: the guest must not pay for it
      const r = await runProgram(
        'mkfs.ext4',
        [
          '-q',
          '-F',
          '-L',
          'hull-root',
          '-E',
          'lazy_itable_init=0,lazy_journal_init=0',
          '-d',
          tree,
          tmp,
          `${size / 1024}k`,
        ],
        { allowFailure: true },
      );
      if (r.status !== 0)
        throw new HostCommandError(
          'mkfs.ext4',
          ['-d', tree],
          r.status,
          r.stderr,
          'the image could not be turned into a VM disk; check free space under ' + dir,
        );
      try {
        linkSync(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // a concurrent create built it first
      }
    } finally {
      if (tree === join(work, 'merged')) await unmount(tree).catch(() => undefined);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return path;
}

/**
 * Remove cached root disks of images whose id is not in `keep` (called after image garbage collection,
 * under no lock: a VM being created records its instance, so its image is in `keep`, before it builds a
 * disk). Half-built entries (.build-*) of dead builds go too. Returns the bytes freed.
 */
export function pruneImageDisks(vmDir: string, keep: ReadonlySet<string>): number {
  const dir = join(vmDir, 'disks');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const keepKeys = new Set([...keep].map(imageKey));
  let freed = 0;
  for (const name of names) {
    const m = /^([a-f0-9]{64})(?:-\d+)?\.ext4$/.exec(name);
    if (!m || keepKeys.has(m[1]!)) continue;
    const path = join(dir, name);
    try {
      freed += statSync(path).blocks * 512;
    } catch {
      /* gone meanwhile */
    }
    rmSync(path, { force: true });
  }
  return freed;
}

/**
 * An image's root disk grown to `size` bytes (--disk-size): a sparse copy of the cached base (a reflink where the
 * filesystem can), made longer and its ext4 grown with resize2fs, cached next to the base as <id>-<size>.ext4 (so
 * VMs of one image and one size share it, and image pruning drops it with the base).
 */
export async function ensureSizedImageDisk(
  base: string,
  size: number,
  log: (s: string) => void = () => undefined,
): Promise<string> {
  const have = statSync(base).size;
  if (size < have)
    throw new InvalidArgumentError(
      `--disk-size ${Math.round(size / MiB)}m is smaller than the image's root disk (${Math.round(have / MiB)} MiB): give at least that`,
    );
  // whole 4 KiB blocks (ext4's block size here)
  const bytes = Math.floor(size / 4096) * 4096;
  if (bytes === have) return base;
  const path = base.replace(/\.ext4$/, `-${bytes}.ext4`);
  if (existsSync(path)) return path;
  const work = mkdtempSync(join(base, '..', '.build-'));
  try {
    const tmp = join(work, 'disk.ext4');
    log(`hull: growing the VM root disk to ${Math.round(bytes / MiB)} MiB (sparse)`);
    await runProgram('cp', ['--sparse=always', '--reflink=auto', base, tmp]);
    await runProgram('truncate', ['-s', String(bytes), tmp]);
    // resize2fs wants a checked filesystem; the base was made by mkfs and never mounted, so -f is enough
    await runProgram('resize2fs', ['-f', tmp], { hint: 'is e2fsprogs installed?' });
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return path;
}

/**
 * A full OS disk's own copy (hull vm create --disk): the user's file copied to `path` (sparse; a reflink where the
 * pool's filesystem can share the blocks), a qcow2 with a backing file flattened into one file, then grown to
 * `size` when given (the guest's cloud-init grows its partition and filesystem at boot). The user's file is only read.
 */
export async function importDiskImage(
  src: string,
  path: string,
  format: 'raw' | 'qcow2',
  size?: number,
  log: (s: string) => void = () => undefined,
): Promise<void> {
  if (existsSync(path)) return;
  const info = await qemuImgInfo(src, format);
  if (size !== undefined && size < info.virtualSize)
    throw new InvalidArgumentError(
      `--disk-size ${Math.round(size / MiB)}m is smaller than the disk image (${Math.round(info.virtualSize / MiB)} MiB): disks are never shrunk; give at least that`,
    );
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  try {
    log(`hull: importing ${src} into the VM's storage pool`);
    if (info.backingFile) await runProgram(qemuImgBinary(), ['convert', '-q', '-f', format, '-O', format, src, tmp]);
    else await runProgram('cp', ['--sparse=always', '--reflink=auto', src, tmp]);
    if (size !== undefined && size > info.virtualSize)
      await runProgram(qemuImgBinary(), ['resize', '-q', '-f', format, tmp, String(size)]);
    linkSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The instance's writable disk: a qcow2 overlay over the base (kept across restarts, like a container's upper dir). */
export async function ensureInstanceDisk(path: string, base: string, baseFormat: 'raw' | 'qcow2'): Promise<void> {
  if (existsSync(path)) return;
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  await qemuImgCreateOverlay(tmp, base, baseFormat);
  linkSync(tmp, path);
  rmSync(tmp, { force: true });
}
