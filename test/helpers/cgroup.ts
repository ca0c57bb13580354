/**
 * Reading a hull instance's cgroup files the way the host lays them out, independently of src/host/cgroups.ts
 * (the code under test): v1 and hybrid hosts keep one directory per controller (/sys/fs/cgroup/<ctrl>/hull/<id>),
 * pure cgroup v2 hosts one unified directory (/sys/fs/cgroup/hull/<id>) with other file names and formats.
 *
 * HULL_TEST_CGROUP=v2 (set by the cgroup v2 guest tier, test/cgroup-v2-guest.test.ts) makes tests insist on v2.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** True when /sys/fs/cgroup itself is the cgroup2 hierarchy (a pure v2 host). */
export const PURE_V2 = statfsSync(CGROUP_ROOT).type === CGROUP2_SUPER_MAGIC;

if (process.env.HULL_TEST_CGROUP === 'v2')
  assert.ok(PURE_V2, 'HULL_TEST_CGROUP=v2, but /sys/fs/cgroup is not a cgroup2 mount');

/** The cgroup directories an id may have: the unified one on v2, one per v1 hierarchy otherwise. */
export function cgroupDirs(id: string): string[] {
  if (PURE_V2) return [join(CGROUP_ROOT, 'hull', id)];
  return readdirSync(CGROUP_ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(CGROUP_ROOT, d.name, 'hull', id));
}

/** The cgroup directories of `id` that exist. */
export function existingCgroupDirs(id: string): string[] {
  return cgroupDirs(id).filter((d) => existsSync(d));
}

/** A cgroup file of instance `id`: v1 `<v1Controller>/hull/<id>/<v1File>`, v2 `hull/<id>/<v2File>` (trimmed). */
export function instanceCgroupFile(id: string, v1Controller: string, v1File: string, v2File: string): string {
  return read(id, v1Controller, v1File, v2File);
}

function read(id: string, v1Controller: string, v1File: string, v2File: string): string {
  const path = PURE_V2 ? join(CGROUP_ROOT, 'hull', id, v2File) : join(CGROUP_ROOT, v1Controller, 'hull', id, v1File);
  return readFileSync(path, 'utf8').trim();
}

/** The memory limit in bytes (Infinity when unlimited): v1 memory.limit_in_bytes, v2 memory.max. */
export function memoryLimit(id: string): number {
  const s = read(id, 'memory', 'memory.limit_in_bytes', 'memory.max');
  const n = s === 'max' ? Infinity : Number(s);
  return n >= 2 ** 62 ? Infinity : n;
}

/** The CFS quota and period in µs (quota -1 when unlimited): v1 cpu.cfs_quota_us/cpu.cfs_period_us, v2 cpu.max. */
export function cpuQuota(id: string): { quota: number; period: number } {
  if (PURE_V2) {
    const [q, p] = read(id, '', '', 'cpu.max').split(/\s+/);
    return { quota: q === 'max' ? -1 : Number(q), period: Number(p) };
  }
  return {
    quota: Number(read(id, 'cpu', 'cpu.cfs_quota_us', '')),
    period: Number(read(id, 'cpu', 'cpu.cfs_period_us', '')),
  };
}

/** pids.max (the same file in v1 and v2): a number or 'max'. */
export function pidsMax(id: string): string {
  return read(id, 'pids', 'pids.max', 'pids.max');
}

/** The freezer's state: v1 freezer.state, v2 the "frozen" key of cgroup.events. */
export function freezerState(id: string): 'FROZEN' | 'THAWED' | 'FREEZING' {
  if (PURE_V2) return /^frozen 1$/m.test(read(id, '', '', 'cgroup.events')) ? 'FROZEN' : 'THAWED';
  return read(id, 'freezer', 'freezer.state', '') as 'FROZEN' | 'THAWED' | 'FREEZING';
}

/**
 * The block I/O weight file of `id` and its content: v1 blkio.weight (CFQ) or blkio.bfq.weight (BFQ);
 * v2 io.bfq.weight (BFQ) or io.weight (the io cost model; runc maps the weight 10–1000 onto 1–10000 there).
 */
export function blkioWeight(id: string): { file: string; value: string } {
  const dir = PURE_V2 ? join(CGROUP_ROOT, 'hull', id) : join(CGROUP_ROOT, 'blkio', 'hull', id);
  const files = PURE_V2 ? ['io.bfq.weight', 'io.weight'] : ['blkio.weight', 'blkio.bfq.weight'];
  const file = files.find((f) => existsSync(join(dir, f))) ?? files[0]!;
  return { file, value: readFileSync(join(dir, file), 'utf8').trim() };
}

/** cpu.weight (v2) for cpu.shares (v1), as runc and crun convert it. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** What a blkio weight of `w` reads as in the file blkioWeight() found. */
export function expectedBlkioWeight(file: string, w: number): RegExp {
  const v = file === 'io.weight' ? 1 + Math.floor(((w - 10) * 9999) / 990) : w;
  return new RegExp(`^(default )?${v}$`);
}
