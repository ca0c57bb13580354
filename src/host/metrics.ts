/**
 * The host's figures as the kernel reports them: CPU time (/proc/stat), memory (/proc/meminfo), network
 * counters (/proc/net/dev) and a file system's space (statfs). The parsers are pure, for the unit tests.
 */
import { readFileSync, statfsSync } from 'node:fs';

export interface HostCpu {
  /** CPU time since boot, in seconds, all CPUs together */
  userSeconds: number;
  systemSeconds: number;
  idleSeconds: number;
  totalSeconds: number;
}

/** /proc/stat's first line ("cpu  user nice system idle iowait irq softirq steal …", in USER_HZ = 100 ticks). */
export function parseProcStat(text: string): HostCpu {
  const first = text.split('\n', 1)[0] ?? '';
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  // sum the ticks, then divide (no rounding noise)
  const t = (...i: number[]) => i.reduce((a, k) => a + (Number.isFinite(f[k]) ? f[k]! : 0), 0) / 100;
  return {
    userSeconds: t(0, 1),
    systemSeconds: t(2, 5, 6),
    idleSeconds: t(3, 4),
    totalSeconds: t(0, 1, 2, 3, 4, 5, 6, 7),
  };
}

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
  usedBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

/** /proc/meminfo ("MemTotal:  16318412 kB" lines). */
export function parseMeminfo(text: string): HostMemory {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) kb.set(m[1]!, Number(m[2]) * 1024);
  }
  const total = kb.get('MemTotal') ?? 0;
  const available = kb.get('MemAvailable') ?? kb.get('MemFree') ?? 0;
  return {
    totalBytes: total,
    availableBytes: available,
    usedBytes: Math.max(0, total - available),
    swapTotalBytes: kb.get('SwapTotal') ?? 0,
    swapFreeBytes: kb.get('SwapFree') ?? 0,
  };
}

export interface HostInterface {
  name: string;
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

/** /proc/net/dev: two header lines, then "  eth0: rxbytes rxpackets … (8 rx fields) txbytes txpackets …". */
export function parseNetDev(text: string): HostInterface[] {
  const out: HostInterface[] = [];
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const f = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 10) continue;
    out.push({ name: line.slice(0, i).trim(), rxBytes: f[0]!, rxPackets: f[1]!, txBytes: f[8]!, txPackets: f[9]! });
  }
  return out;
}

export interface FsSpace {
  path: string;
  totalBytes: number;
  freeBytes: number;
  availableBytes: number;
  usedBytes: number;
}

export function fsSpace(path: string): FsSpace {
  const s = statfsSync(path);
  const total = s.blocks * s.bsize;
  const free = s.bfree * s.bsize;
  return { path, totalBytes: total, freeBytes: free, availableBytes: s.bavail * s.bsize, usedBytes: total - free };
}

const read = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

export function hostCpu(): HostCpu {
  return parseProcStat(read('/proc/stat'));
}
export function hostMemory(): HostMemory {
  return parseMeminfo(read('/proc/meminfo'));
}
export function hostInterfaces(): HostInterface[] {
  return parseNetDev(read('/proc/net/dev'));
}
/** 1, 5 and 15 minute load averages. */
export function loadAverage(): [number, number, number] {
  const f = read('/proc/loadavg').split(/\s+/).slice(0, 3).map(Number);
  return [f[0] || 0, f[1] || 0, f[2] || 0];
}
