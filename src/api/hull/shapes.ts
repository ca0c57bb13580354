/**
 * hull's own JSON shapes for `/hull/v1` (camelCase, compact, both kinds in one shape): the OpenAPI document
 * (openapi.ts) describes each. Pure functions of the engine's records, apart from `instanceView`'s live addresses.
 */
import type { Engine } from '../../engine/engine.js';
import type { EventRecord, InstanceRecord } from '../../engine/store.js';
import type { ImageRecord } from '../../engine/transfer.js';
import type { NetworkDef } from '../../engine/networking.js';
import { instanceView as engineView } from '../../engine/describe.js';
import { displayOf } from '../../engine/display.js';
import type { InstanceSample } from '../../engine/metrics.js';

const iso = (ms: number | null | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

export interface InstanceShape {
  id: string;
  name: string;
  kind: 'container' | 'vm';
  state: string;
  image: string;
  imageId: string;
  command: string[];
  created: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  restartCount: number;
  restartPolicy: string;
  health: string | null;
  tty: boolean;
  labels: Record<string, string>;
  networks: { name: string; address: string | null }[];
  ports: { hostIp: string; hostPort: number; containerPort: number; protocol: string }[];
  resources: { memory: number | null; cpus: number | null; pidsLimit: number | null };
  container: { runtime: string; privileged: boolean } | null;
  vm: {
    mode: string;
    machine: string | null;
    accel: string;
    deviceModel: string;
    cpus: number | null;
    memory: number | null;
    kernel: string | null;
    disk: string | null;
    console: boolean;
  } | null;
  /** the graphical display (--display), served over /hull/v1/instances/{id}/vnc; null: none */
  display: { type: 'vnc' } | null;
}

/** What the engine knows of an instance beyond its record (engine/describe.ts's view), as far as the shape uses it. */
export interface ShapeFacts {
  attachments: { network: string; address: string }[];
  published: { hostIp: string; hostPort: number; containerPort: number; protocol: string }[];
  /** the driver's own facts (describe()'s details: a VM's effective accelerator, machine, CPUs, memory) */
  details: Record<string, unknown>;
  hasConsole: boolean;
  /** the driver's display of the instance (InstanceDriver.display) */
  display?: { type: 'vnc' } | null;
}

const NO_FACTS: ShapeFacts = { attachments: [], published: [], details: {}, hasConsole: false };

const strOr = (v: unknown, d: string | null): string | null => (typeof v === 'string' && v ? v : d);
const numOr = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** One instance, either kind, in hull's compact shape. */
export function instanceShape(rec: InstanceRecord, facts: ShapeFacts = NO_FACTS): InstanceShape {
  const c = rec.config;
  const r = c.resources ?? {};
  const d = facts.details;
  return {
    id: rec.id,
    name: rec.name,
    kind: rec.kind,
    state: rec.state,
    image: rec.image,
    imageId: rec.imageId,
    command: c.command,
    created: iso(rec.createdAt)!,
    startedAt: iso(rec.startedAt),
    finishedAt: iso(rec.finishedAt),
    exitCode: rec.exitCode,
    restartCount: rec.restartCount,
    restartPolicy:
      c.restart.name === 'on-failure' && c.restart.maxRetries ? `on-failure:${c.restart.maxRetries}` : c.restart.name,
    health: c.healthcheck && rec.health ? rec.health.status : null,
    tty: c.tty,
    labels: c.labels ?? {},
    networks:
      c.network === 'bridge'
        ? (c.networks ?? []).map((n) => ({
            name: n.name,
            address: facts.attachments.find((a) => a.network === n.name)?.address.split('/')[0] ?? null,
          }))
        : [{ name: c.network, address: null }],
    ports: facts.published.map((p) => ({
      hostIp: p.hostIp || '0.0.0.0',
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol,
    })),
    resources: { memory: r.memory ?? null, cpus: r.cpus ?? null, pidsLimit: r.pidsLimit ?? null },
    container: c.container ? { runtime: c.container.runtime, privileged: c.container.privileged } : null,
    vm:
      rec.kind === 'vm'
        ? {
            mode: strOr(d.Mode, c.vm?.disk ? 'disk' : 'agent')!,
            machine: strOr(d.Machine, null),
            accel: strOr(d.Accel, c.vm?.accel ?? 'auto')!,
            deviceModel: strOr(d.DeviceModel, c.vm?.deviceModel ?? 'virtio')!,
            cpus: numOr(d.Cpus),
            memory: numOr(d.Memory),
            kernel: strOr(d.Kernel, c.vm?.kernel ?? null),
            disk: c.vm?.disk ?? null,
            console: facts.hasConsole,
          }
        : null,
    display: facts.display ? { type: facts.display.type } : null,
  };
}

/** instanceShape with what the engine knows (engine/describe.ts's instanceView: addresses, ports, the driver's facts). */
export function instanceShapeOf(engine: Engine, rec: InstanceRecord): InstanceShape {
  const v = engineView(engine, rec);
  return instanceShape(rec, {
    attachments: v.attachments,
    published: v.published,
    details: v.driver?.details ?? {},
    hasConsole: engine.driver(rec.kind).capabilities.console,
    display: displayOf(engine, rec),
  });
}

export function imageView(img: ImageRecord): Record<string, unknown> {
  return {
    id: img.id,
    names: img.names,
    digest: img.manifestDigest,
    created: img.created,
    size: img.size,
    architecture: img.config.architecture ?? '',
    os: img.config.os ?? '',
  };
}

export function imageDetail(img: ImageRecord): Record<string, unknown> {
  const cfg = img.config.config ?? {};
  return {
    ...imageView(img),
    config: {
      env: cfg.Env ?? [],
      cmd: cfg.Cmd ?? [],
      entrypoint: cfg.Entrypoint ?? [],
      workdir: cfg.WorkingDir ?? '',
      user: cfg.User ?? '',
      labels: cfg.Labels ?? {},
      exposedPorts: Object.keys(cfg.ExposedPorts ?? {}),
    },
    layers: img.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })),
  };
}

export function networkView(d: NetworkDef, users: string[]): Record<string, unknown> {
  return {
    id: d.id,
    name: d.name,
    driver: d.driver,
    subnet: d.subnet,
    gateway: d.gateway,
    ipRange: d.ipRange ?? null,
    ipv6: d.ipv6 ?? null,
    internal: d.internal,
    dns: d.dns,
    mtu: d.mtu ?? null,
    labels: d.labels,
    created: new Date(d.createdAt).toISOString(),
    instances: users,
  };
}

export function eventView(e: EventRecord): Record<string, unknown> {
  return {
    seq: e.seq,
    time: new Date(e.time).toISOString(),
    type: e.type,
    action: e.action,
    id: e.id,
    name: e.name,
    attributes: e.attributes,
  };
}

/** The events a WebSocket subscriber asked for (`?type=&action=&instance=`, each repeatable: any of them). */
export interface EventFilter {
  type: string[];
  action: string[];
  instance: string[];
}

export function eventFilterOf(q: URLSearchParams): EventFilter {
  return { type: q.getAll('type'), action: q.getAll('action'), instance: q.getAll('instance') };
}

export function eventMatches(e: EventRecord, f: EventFilter): boolean {
  return (
    (!f.type.length || f.type.includes(e.type)) &&
    (!f.action.length || f.action.includes(e.action)) &&
    (!f.instance.length || f.instance.some((i) => i === e.name || (i.length >= 3 && e.id.startsWith(i))))
  );
}

/** An instance's figures as /hull/v1 gives them (the InstanceMetrics schema). */
export function metricsView(rec: InstanceRecord, s: InstanceSample, pct: number, time: string) {
  const x = s.stats;
  const n = (v: number) => Math.max(0, Math.round(v));
  return {
    id: rec.id,
    name: rec.name,
    kind: rec.kind,
    state: rec.state,
    live: s.live,
    time,
    cpuSeconds: x.cpuUsageNs / 1e9,
    cpuPercent: pct,
    memoryBytes: n(x.memoryUsage),
    memoryLimitBytes: n(x.memoryLimit),
    pids: n(x.pids),
    blockReadBytes: n(x.blkioRead),
    blockWriteBytes: n(x.blkioWrite),
    networkReceiveBytes: n(x.netRx),
    networkTransmitBytes: n(x.netTx),
  };
}
