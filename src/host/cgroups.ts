/**
 * cgroup mechanism: which hierarchy layout the host has (v1, v2 or hybrid), where an instance's
 * cgroup lives for each controller, and readers for the v1 and v2 statistics files. Reads files
 * directly (no runtime invocation) so that stats are cheap.
 */
import { readFileSync, readdirSync, rmdirSync, statfsSync, existsSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { readMountInfo } from './mount.js';

/** v1: controllers each on their own hierarchy; v2: unified only; hybrid: v1 controllers + a cgroup2 mount. */
export type CgroupLayout = 'v1' | 'v2' | 'hybrid';

const CGROUP2_SUPER_MAGIC = 0x63677270;
/** Where the cgroup hierarchies are mounted. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/** Detect the host's cgroup layout (statfs of /sys/fs/cgroup and /sys/fs/cgroup/unified). */
export function detectCgroupLayout(root = CGROUP_ROOT): CgroupLayout {
  if (statfsSync(root).type === CGROUP2_SUPER_MAGIC) return 'v2';
  try {
    if (statfsSync(join(root, 'unified')).type === CGROUP2_SUPER_MAGIC) return 'hybrid';
  } catch {
    /* no unified mount */
  }
  return 'v1';
}

/** The controllers hull reads or cleans up. */
export const V1_CONTROLLERS = [
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'blkio',
  'pids',
  'hugetlb',
  'net_cls',
  'net_prio',
  'perf_event',
  'rdma',
  'misc',
  'name=systemd',
] as const;

/** Where a cgroup lives: per v1 controller, or one v2 directory. */
export interface CgroupPaths {
  layout: CgroupLayout;
  /** v1 (and hybrid): controller name → absolute directory; name=systemd included when mounted */
  v1: Map<string, string>;
  /** v2: the unified directory (null on v1/hybrid) */
  v2: string | null;
}

let v1MountCache: Map<string, string> | null = null;

/**
 * Mount points of the v1 hierarchies, keyed by controller (a co-mounted cpu,cpuacct hierarchy
 * appears under both names). Read once from /proc/self/mountinfo.
 */
export function v1Mounts(): Map<string, string> {
  if (v1MountCache) return v1MountCache;
  const map = new Map<string, string>();
  for (const m of readMountInfo()) {
    if (m.fsType !== 'cgroup') continue;
    for (const opt of m.superOptions) {
      if ((V1_CONTROLLERS as readonly string[]).includes(opt) && !map.has(opt)) map.set(opt, m.mountPoint);
    }
  }
  v1MountCache = map;
  return map;
}

/**
 * Directories of the cgroup at `cgroupsPath` (an absolute path such as /hull/<id>, as put in
 * the OCI spec's linux.cgroupsPath), as runc and crun create it with the cgroupfs driver.
 */
export function cgroupPaths(cgroupsPath: string, layout: CgroupLayout = detectCgroupLayout()): CgroupPaths {
  const rel = cgroupsPath.replace(/^\/+/, '');
  if (layout === 'v2') return { layout, v1: new Map(), v2: join(CGROUP_ROOT, rel) };
  const v1 = new Map<string, string>();
  for (const [ctrl, mnt] of v1Mounts()) v1.set(ctrl, join(mnt, rel));
  return { layout, v1, v2: null };
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function readNumber(path: string): number | null {
  const t = readText(path);
  if (t === null) return null;
  const s = t.trim();
  if (s === 'max') return Infinity;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** Parse "key value" lines (memory.stat, cpu.stat, memory.events). */
export function parseFlatKeyed(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** Sum read and write bytes of v1 blkio.throttle.io_service_bytes ("8:0 Read 1234" lines). */
export function parseBlkioServiceBytes(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    if (f[1] === 'Read') read += Number(f[2]);
    else if (f[1] === 'Write') write += Number(f[2]);
  }
  return { read, write };
}

/** Sum rbytes/wbytes of v2 io.stat ("8:0 rbytes=1 wbytes=2 ..." lines). */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split('=');
      if (k === 'rbytes') read += Number(v);
      else if (k === 'wbytes') write += Number(v);
    }
  }
  return { read, write };
}

/** Resource usage of one cgroup. Memory usage excludes inactive file cache (as docker stats does). */
export interface CgroupStats {
  cpuUsageNs: number;
  memoryUsage: number;
  /** the limit, or the host's memory when unlimited */
  memoryLimit: number;
  pids: number;
  blkioRead: number;
  blkioWrite: number;
  /** OOM kills recorded by the memory controller (v1 memory.oom_control, v2 memory.events) */
  oomKills: number;
}

/** Read the statistics of a cgroup from its v1 or v2 files. Missing files read as 0. */
export function readCgroupStats(paths: CgroupPaths): CgroupStats {
  const host = totalmem();
  const capLimit = (n: number | null): number => (n === null || !Number.isFinite(n) || n > host ? host : n);
  if (paths.v2) {
    const d = paths.v2;
    const cpu = parseFlatKeyed(readText(join(d, 'cpu.stat')) ?? '');
    const mstat = parseFlatKeyed(readText(join(d, 'memory.stat')) ?? '');
    const events = parseFlatKeyed(readText(join(d, 'memory.events')) ?? '');
    const current = readNumber(join(d, 'memory.current')) ?? 0;
    const io = parseIoStat(readText(join(d, 'io.stat')) ?? '');
    return {
      cpuUsageNs: (cpu.get('usage_usec') ?? 0) * 1000,
      memoryUsage: Math.max(0, current - (mstat.get('inactive_file') ?? 0)),
      memoryLimit: capLimit(readNumber(join(d, 'memory.max'))),
      pids: readNumber(join(d, 'pids.current')) ?? 0,
      blkioRead: io.read,
      blkioWrite: io.write,
      oomKills: events.get('oom_kill') ?? 0,
    };
  }
  const at = (ctrl: string, file: string): string => join(paths.v1.get(ctrl) ?? '/nonexistent', file);
  const mstat = parseFlatKeyed(readText(at('memory', 'memory.stat')) ?? '');
  const usage = readNumber(at('memory', 'memory.usage_in_bytes')) ?? 0;
  const oom = parseFlatKeyed(readText(at('memory', 'memory.oom_control')) ?? '');
  const blk = parseBlkioServiceBytes(
    readText(at('blkio', 'blkio.throttle.io_service_bytes_recursive')) ??
      readText(at('blkio', 'blkio.throttle.io_service_bytes')) ??
      '',
  );
  return {
    cpuUsageNs: readNumber(at('cpuacct', 'cpuacct.usage')) ?? 0,
    memoryUsage: Math.max(0, usage - (mstat.get('total_inactive_file') ?? mstat.get('inactive_file') ?? 0)),
    memoryLimit: capLimit(readNumber(at('memory', 'memory.limit_in_bytes'))),
    pids: readNumber(at('pids', 'pids.current')) ?? 0,
    blkioRead: blk.read,
    blkioWrite: blk.write,
    oomKills: oom.get('oom_kill') ?? 0,
  };
}

/** The raw memory limit in bytes (Infinity when unlimited), or null when the cgroup is gone. */
export function readMemoryLimit(paths: CgroupPaths): number | null {
  if (paths.v2) return readNumber(join(paths.v2, 'memory.max'));
  const n = readNumber(join(paths.v1.get('memory') ?? '/nonexistent', 'memory.limit_in_bytes'));
  // v1 reports "unlimited" as the largest page-aligned 63-bit value
  return n !== null && n >= 2 ** 62 ? Infinity : n;
}

/** Freezer state: 'FROZEN', 'FREEZING', 'THAWED', or null when the cgroup is gone. */
export function readFreezerState(paths: CgroupPaths): 'FROZEN' | 'FREEZING' | 'THAWED' | null {
  if (paths.v2) {
    const ev = readText(join(paths.v2, 'cgroup.events'));
    if (ev === null) return null;
    return parseFlatKeyed(ev).get('frozen') === 1 ? 'FROZEN' : 'THAWED';
  }
  const s = readText(join(paths.v1.get('freezer') ?? '/nonexistent', 'freezer.state'));
  return s === null ? null : (s.trim() as 'FROZEN' | 'FREEZING' | 'THAWED');
}

/**
 * Waits until a freeze the runtime asked for has taken hold: a v1 freezer reports FREEZING while some task has
 * not stopped yet, and the runtime may return before then (crun does); like runc, the request is written again
 * until the state reads FROZEN. Returns the last state (FROZEN, or FREEZING after `timeoutMs`; null: gone).
 */
export async function waitFrozen(
  paths: CgroupPaths,
  timeoutMs = 5000,
): Promise<'FROZEN' | 'FREEZING' | 'THAWED' | null> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const s = readFreezerState(paths);
    if (s !== 'FREEZING' || Date.now() >= until) return s;
    if (i % 10 === 9 && !paths.v2) {
      try {
        writeFileSync(join(paths.v1.get('freezer')!, 'freezer.state'), 'FROZEN');
      } catch {
        // gone meanwhile: the next read says so
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Pids in the cgroup (v2 cgroup.procs, v1 the pids or freezer controller's cgroup.procs). */
export function readCgroupPids(paths: CgroupPaths): number[] {
  const dir = paths.v2 ?? paths.v1.get('pids') ?? paths.v1.get('freezer') ?? paths.v1.get('memory');
  const t = dir ? readText(join(dir, 'cgroup.procs')) : null;
  return t ? t.split('\n').filter(Boolean).map(Number) : [];
}

/** True when a cgroup directory exists for any controller. */
export function cgroupExists(paths: CgroupPaths): boolean {
  if (paths.v2) return existsSync(paths.v2);
  for (const d of paths.v1.values()) if (existsSync(d)) return true;
  return false;
}

/** rmdir a cgroup directory after its children (deepest first). cgroup files need no removal. */
function removeTree(dir: string): string[] {
  const failed: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return failed; // already gone
  }
  for (const e of entries) if (e.isDirectory()) failed.push(...removeTree(join(dir, e.name)));
  try {
    rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(dir);
  }
  return failed;
}

/**
 * Remove a (leftover, empty) cgroup in every hierarchy. Directories that still hold processes
 * stay; their paths are returned so the caller can report them. Never throws.
 */
export function removeCgroup(paths: CgroupPaths): string[] {
  const dirs = new Set<string>(paths.v2 ? [paths.v2] : paths.v1.values());
  // on hybrid hosts the runtime may also have made a directory in the unified hierarchy
  if (paths.layout === 'hybrid') {
    const rel = [...paths.v1.values()][0];
    const mnt = [...v1Mounts().values()][0];
    if (rel && mnt) dirs.add(join(CGROUP_ROOT, 'unified', rel.slice(mnt.length)));
  }
  const failed: string[] = [];
  for (const d of dirs) failed.push(...removeTree(d));
  return failed;
}
