/**
 * Resource figures for the front ends (`hull stats`, the daemon's `/hull/v1` metrics and `/metrics`): one
 * instance's sample from its driver (zeros when it is not running), CPU percentages between two samples, and
 * the host's own figures (CPU, memory, the root's file system, network interfaces).
 */
import { cpus } from 'node:os';
import type { InstanceStats } from '../common/instance.js';
import {
  fsSpace,
  type FsSpace,
  hostCpu,
  type HostCpu,
  hostInterfaces,
  type HostInterface,
  hostMemory,
  type HostMemory,
  loadAverage,
} from '../host/metrics.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

export const ZERO_STATS: InstanceStats = {
  cpuUsageNs: 0,
  memoryUsage: 0,
  memoryLimit: 0,
  pids: 0,
  blkioRead: 0,
  blkioWrite: 0,
  netRx: 0,
  netTx: 0,
};

export interface InstanceSample {
  id: string;
  name: string;
  /** whether the figures come from a live instance (false: zeros, it is not running or its driver failed) */
  live: boolean;
  /** when it was taken, process.hrtime in ns (for cpuPercent) */
  atNs: number;
  stats: InstanceStats;
}

/** One sample of an instance; zeros when it is not running or its driver cannot say. */
export async function sampleInstance(engine: Engine, rec: InstanceRecord): Promise<InstanceSample> {
  const running = rec.state === 'running' || rec.state === 'paused';
  const s = running
    ? await engine
        .driver(rec.kind)
        .stats(engine.context(rec))
        .catch(() => undefined)
    : undefined;
  return {
    id: rec.id,
    name: rec.name,
    live: !!s,
    atNs: Number(process.hrtime.bigint()),
    stats: s ?? { ...ZERO_STATS },
  };
}

/** CPU use between two samples, in percent of one CPU (docker stats' figure), rounded to 2 decimals. */
export function cpuPercent(prev: { cpuUsageNs: number; atNs: number } | undefined, cur: InstanceSample): number {
  if (!prev || !cur.live || cur.atNs <= prev.atNs) return 0;
  const p = ((cur.stats.cpuUsageNs - prev.cpuUsageNs) / (cur.atNs - prev.atNs)) * 100;
  return Math.max(0, Math.round(p * 100) / 100);
}

export interface HostMetrics {
  time: string;
  cpu: HostCpu & { count: number; load: [number, number, number] };
  memory: HostMemory;
  /** the file system of hull's root */
  disk: FsSpace;
  network: HostInterface[];
}

export function hostMetrics(engine: Engine): HostMetrics {
  return {
    time: new Date().toISOString(),
    cpu: { count: cpus().length, load: loadAverage(), ...hostCpu() },
    memory: hostMemory(),
    disk: fsSpace(engine.root),
    network: hostInterfaces(),
  };
}
