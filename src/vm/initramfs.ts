/**
 * The guest initramfs: hull's agent as /init plus the kernel modules the chosen device model needs, as a
 * cpio "newc" archive (the format the kernel unpacks; written here rather than with cpio(1) so that the
 * archive is byte-for-byte reproducible and needs no staging tree).
 *
 * Modules come from the cached kernel's tree; their dependencies from its modules.dep (made by depmod when
 * the kernel was cached), loaded deepest first. The agent loads them from /hull/modules in that order.
 * Archives are cached per kernel, device model and agent build under <cache>/initramfs/<hash>.cpio.
 */
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostSupportError } from '../common/errors.js';
import type { KernelInfo } from './kernel.js';

/** One archive member. */
export interface CpioEntry {
  name: string;
  /** file type and permission bits (S_IFREG | 0o755 …) */
  mode: number;
  data?: Buffer;
  /** symlink target */
  target?: string;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/**
 * Serialise entries as a newc archive (magic 070701, 13 eight-digit hex fields, the NUL-terminated name
 * padded to 4 bytes, the data padded to 4 bytes) ending with TRAILER!!!. Times are 0 and inode numbers
 * sequential, so equal input gives an equal archive.
 */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const add = (name: string, mode: number, data: Buffer, nlink: number): void => {
    const nameBuf = Buffer.from(name + '\0');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0];
    const header = Buffer.from('070701' + fields.map(hex8).join(''), 'ascii');
    parts.push(
      header,
      nameBuf,
      Buffer.alloc(pad4(header.length + nameBuf.length)),
      data,
      Buffer.alloc(pad4(data.length)),
    );
  };
  for (const e of entries) {
    const type = e.mode & 0o170000;
    const data = type === S_IFLNK ? Buffer.from(e.target ?? '') : (e.data ?? Buffer.alloc(0));
    add(e.name.replace(/^\/+/, ''), e.mode, data, type === S_IFDIR ? 2 : 1);
  }
  ino = 0;
  add('TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(parts);
}

/** Parse a newc archive back (for tests and checks). */
export function readCpio(buf: Buffer): CpioEntry[] {
  const out: CpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (buf.toString('ascii', off, off + 6) !== '070701') throw new Error(`not a newc archive at offset ${off}`);
    const f = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = f(1);
    const size = f(6);
    const nameSize = f(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = nameStart + nameSize + pad4(110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    const data = buf.subarray(dataStart, dataStart + size);
    const e: CpioEntry = { name, mode };
    if ((mode & 0o170000) === S_IFLNK) e.target = data.toString();
    else if ((mode & 0o170000) === S_IFREG) e.data = Buffer.from(data);
    out.push(e);
    off = dataStart + size + pad4(size);
  }
}

/** Module sets of the device models (names as in modules.dep, without .ko). */
export const MODULE_SETS = {
  'virtio-pci': ['virtio_pci', 'virtio_blk', 'virtio_console', 'virtio_balloon', 'virtio-rng', 'virtio_net'],
  'virtio-mmio': ['virtio_mmio', 'virtio_blk', 'virtio_console', 'virtio_balloon', 'virtio-rng', 'virtio_net'],
  // the NIC: Debian's cloud kernel has no e1000/rtl8139 driver; vmxnet3 is the fully emulated PCI NIC it has
  emulated: ['ata_piix', 'sd_mod', 'vmxnet3'],
  /** a user's kernel: its drivers are built in */
  none: [],
} as const;

export type ModuleSet = keyof typeof MODULE_SETS;

/**
 * Modules for volumes (virtiofs, with fuse; the emulated model's virtiofs device is virtio-pci, its one
 * virtio device): in the archive as /hull/modules-volumes, loaded by the agent only when the main process
 * has volumes, so that boots without them do not pay for loading them.
 */
export const VOLUME_MODULES = {
  'virtio-pci': ['virtiofs'],
  'virtio-mmio': ['virtiofs'],
  emulated: ['virtio_pci', 'virtiofs'],
  none: [],
} as const satisfies Record<ModuleSet, readonly string[]>;

/** modules.dep → name → {path, deps}; paths relative to the kernel's module dir. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const out = new Map<string, { path: string; deps: string[] }>();
  const nameOf = (p: string) => p.slice(p.lastIndexOf('/') + 1).replace(/\.ko(\.\w+)?$/, '');
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    out.set(nameOf(path), { path, deps: deps.map(nameOf) });
  }
  // modules.dep lists a module's dependencies by path; keep a path lookup for names that differ (- vs _)
  return out;
}

/** The modules to load for `wanted`, dependencies first, each once. */
export function moduleLoadOrder(
  dep: Map<string, { path: string; deps: string[] }>,
  wanted: readonly string[],
): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (seen.has(name)) return;
    const m = dep.get(name) ?? dep.get(name.replace(/-/g, '_')) ?? dep.get(name.replace(/_/g, '-'));
    if (!m)
      throw new HostSupportError(
        `the guest kernel has no module ${name}${chain.length ? ` (needed by ${chain.join(' → ')})` : ''}; use a kernel with it built in or as a module`,
      );
    seen.add(name);
    // modules.dep lists every (transitive) dependency; visiting them first puts the deepest first
    for (const d of m.deps) visit(d, [...chain, name]);
    order.push(m.path);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/**
 * Build (or reuse) the initramfs for a kernel, module set and agent binary; returns its path.
 * Concurrent builders write their own temp files; the first to link its file into place wins.
 */
export function ensureInitramfs(cacheDir: string, kernel: KernelInfo, set: ModuleSet, agentPath: string): string {
  const agent = readFileSync(agentPath);
  const key = createHash('sha256')
    .update(kernel.version)
    .update('\0')
    .update(set)
    .update('\0')
    .update(MODULE_SETS[set].join(','))
    .update('\0')
    .update(VOLUME_MODULES[set].join(','))
    .update('\0')
    .update(agent)
    .digest('hex')
    .slice(0, 32);
  const dir = join(cacheDir, 'initramfs');
  const path = join(dir, `${key}.cpio`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const modDir = kernel.modulesDir;
  const dep = set === 'none' ? null : parseModulesDep(readFileSync(join(modDir, 'modules.dep'), 'utf8'));
  const order = dep ? moduleLoadOrder(dep, MODULE_SETS[set]) : [];
  const volumeOrder = dep
    ? moduleLoadOrder(dep, [...MODULE_SETS[set], ...VOLUME_MODULES[set]]).filter((m) => !order.includes(m))
    : [];
  const entries: CpioEntry[] = [
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'proc', mode: S_IFDIR | 0o555 },
    { name: 'sys', mode: S_IFDIR | 0o555 },
    { name: 'hull', mode: S_IFDIR | 0o755 },
    { name: 'hull/lib', mode: S_IFDIR | 0o755 },
    { name: 'init', mode: S_IFREG | 0o755, data: agent },
  ];
  const list: string[] = [];
  const volumeList: string[] = [];
  for (const rel of [...order, ...volumeOrder]) {
    const file = join(modDir, rel);
    if (rel.endsWith('.xz') || rel.endsWith('.zst') || rel.endsWith('.gz')) {
      throw new HostSupportError(
        `the guest kernel's module ${rel} is compressed; hull loads uncompressed modules only`,
      );
    }
    const name = `hull/lib/${rel.slice(rel.lastIndexOf('/') + 1)}`;
    entries.push({ name, mode: S_IFREG | 0o644, data: readFileSync(file) });
    (order.includes(rel) ? list : volumeList).push('/' + name);
  }
  entries.push({ name: 'hull/modules', mode: S_IFREG | 0o644, data: Buffer.from(list.join('\n') + '\n') });
  entries.push({
    name: 'hull/modules-volumes',
    mode: S_IFREG | 0o644,
    data: Buffer.from(volumeList.join('\n') + '\n'),
  });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, writeCpio(entries));
  try {
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  return path;
}
