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
import { HostCommandError } from '../common/errors.js';
import { mountOverlay, unmount } from '../host/mount.js';
import { runProgram } from '../host/proc.js';
import { qemuImgCreateOverlay } from '../host/qemu.js';

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
    const m = /^([a-f0-9]{64})\.ext4$/.exec(name);
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

/** The instance's writable disk: a qcow2 overlay over the base (kept across restarts, like a container's upper dir). */
export async function ensureInstanceDisk(path: string, base: string, baseFormat: 'raw' | 'qcow2'): Promise<void> {
  if (existsSync(path)) return;
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  await qemuImgCreateOverlay(tmp, base, baseFormat);
  linkSync(tmp, path);
  rmSync(tmp, { force: true });
}
