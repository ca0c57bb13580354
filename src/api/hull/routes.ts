/**
 * hull's own API, `/hull/v1/…` (and Prometheus' `/metrics`), on the daemon's router beside docker's: instances of
 * both kinds, images, networks, volumes, long operations, metrics. The WebSocket endpoints are in ws.ts; the shapes
 * in shapes.ts; the document in openapi.ts.
 */
import type { ServerResponse } from 'node:http';
import { NotFoundError } from '../../common/errors.js';
import { parseRestart, parseSignal, parseVolume } from '../../common/parse.js';
import type { CreateRequest } from '../../engine/config.js';
import type { Engine } from '../../engine/engine.js';
import { checkImageRemovable, imageHistory, removeImage } from '../../engine/images.js';
import { type FilterMap, listInstances, parseFilterJson } from '../../engine/list.js';
import { createInstance } from '../../engine/lifecycle/create.js';
import { refreshForView } from '../../engine/lifecycle/exit.js';
import { killInstance } from '../../engine/lifecycle/kill.js';
import { pauseInstance, unpauseInstance } from '../../engine/lifecycle/pause.js';
import { removeInstance } from '../../engine/lifecycle/remove.js';
import { restartInstance } from '../../engine/lifecycle/restart.js';
import { START_PHASES, startInstance } from '../../engine/lifecycle/start.js';
import { stopInstance } from '../../engine/lifecycle/stop.js';
import { cpuPercent, hostMetrics, sampleInstance } from '../../engine/metrics.js';
import { type NetworkDef, removeNetwork } from '../../engine/networking.js';
import {
  createStoragePool,
  createVolume,
  getPool,
  inspectVolume,
  listPools,
  listVolumes,
  type PoolRecord,
  poolSpace,
  poolVolumes,
  removeStoragePool,
  removeVolume,
  volumeUsers,
} from '../../engine/volumes.js';
import { updateInstance } from '../../engine/lifecycle/update.js';
import type { InstanceRecord } from '../../engine/store.js';
import { type ImageRecord, pull } from '../../engine/transfer.js';
import { ApiError, flag, messageOf, noContent, type Router, sendJson } from '../http.js';
import { openapi } from './openapi.js';
import { rmSync } from 'node:fs';
import { buildReceived, receiveContext } from '../docker/build.js';
import type { Operations } from './operations.js';
import { exposition, type MetricFamily, PROMETHEUS_CONTENT_TYPE } from './prometheus.js';
import { imageDetail, imageView, instanceShapeOf, metricsView, networkView } from './shapes.js';
import { checkBody } from './validate.js';
import type { LiveHub } from './live.js';

export const PREFIX = '/hull/v1';

const live = (r: InstanceRecord) => r.state === 'running' || r.state === 'paused';

/** An instance by name, id or id prefix, refreshed (an exit noticed); 404 when there is none. */
export async function instanceOf(engine: Engine, ref: string): Promise<InstanceRecord> {
  let rec: InstanceRecord | undefined;
  try {
    rec = engine.store.lookup(ref);
  } catch (e) {
    if (e instanceof NotFoundError)
      throw new ApiError(404, `no instance ${ref}: list them with GET ${PREFIX}/instances`);
    throw e;
  }
  rec = await refreshForView(engine, rec);
  if (!rec) throw new ApiError(404, `instance ${ref} was removed`);
  return rec;
}

async function imageOf(engine: Engine, ref: string): Promise<ImageRecord> {
  try {
    return await engine.images.resolve(ref);
  } catch (e) {
    if (e instanceof NotFoundError) throw new ApiError(404, `no image ${ref}: pull it with POST ${PREFIX}/images/pull`);
    throw e;
  }
}

function networkOf(engine: Engine, ref: string): NetworkDef {
  try {
    return engine.networks.store.get(ref);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    const byId = engine.networks.store.list().filter((d) => ref.length >= 3 && d.id.startsWith(ref));
    if (byId.length === 1) return byId[0]!;
    throw new ApiError(404, `no network ${ref}: list them with GET ${PREFIX}/networks`);
  }
}

/** Seconds from `?t=`, or undefined. */
function seconds(q: URLSearchParams): number | undefined {
  const t = q.get('t');
  if (t === null || t === '') return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new ApiError(400, `invalid t "${t}": expected whole seconds`);
  return n;
}

interface CreateBody {
  kind?: 'container' | 'vm';
  image: string;
  name?: string;
  command?: string[];
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  stdin?: boolean;
  labels?: Record<string, string>;
  networks?: string[];
  publish?: string[];
  volumes?: string[];
  restart?: string;
  autoRemove?: boolean;
  resources?: { memory?: number; cpus?: number };
  vm?: {
    accel?: string;
    deviceModel?: 'virtio' | 'emulated';
    kernel?: string;
    template?: boolean;
    pool?: string;
    diskSize?: number;
  };
  display?: 'vnc' | 'none';
}

/** One `volumes` entry (docker's -v syntax) as a mount; a 400 naming the entry when it is malformed. */
function volumeOf(spec: string) {
  try {
    return parseVolume(spec);
  } catch (e) {
    throw new ApiError(400, `invalid body.volumes "${spec}": ${messageOf(e)}`);
  }
}

/** A create body (validated against CreateInstance) as the engine's request. */
export function createRequestOf(body: unknown): CreateRequest {
  const b = checkBody<CreateBody>('CreateInstance', body);
  const kind = b.kind ?? 'container';
  if (b.vm && kind !== 'vm') throw new ApiError(400, 'invalid body.vm: VM settings need "kind": "vm"');
  return {
    kind,
    image: b.image,
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.command ? { command: b.command } : {}),
    ...(b.entrypoint ? { entrypoint: b.entrypoint } : {}),
    ...(b.env ? { env: b.env } : {}),
    ...(b.workdir !== undefined ? { workdir: b.workdir } : {}),
    ...(b.user !== undefined ? { user: b.user } : {}),
    ...(b.hostname !== undefined ? { hostname: b.hostname } : {}),
    tty: b.tty === true,
    stdin: b.stdin === true,
    ...(b.labels ? { labels: b.labels } : {}),
    ...(b.networks?.length ? { networks: b.networks } : {}),
    ...(b.publish?.length ? { publish: b.publish } : {}),
    ...(b.volumes?.length ? { mounts: b.volumes.map(volumeOf) } : {}),
    ...(b.restart ? { restart: parseRestart(b.restart) } : {}),
    ...(b.autoRemove ? { autoRemove: true } : {}),
    ...(b.resources ? { resources: { ...b.resources } } : {}),
    ...(b.vm ? { vm: { ...b.vm } } : {}),
    ...(b.display ? { display: b.display } : {}),
  };
}

export interface HullApiState {
  operations: Operations;
  /** the previous sample of each instance, for CPU percentages between scrapes */
  cpu: Map<string, { cpuUsageNs: number; atNs: number }>;
  /** the sampler hub of the live streams (live.ts), made when first watched */
  live?: LiveHub;
}

async function instanceMetrics(engine: Engine, rec: InstanceRecord, state: HullApiState) {
  const s = await sampleInstance(engine, rec);
  const pct = cpuPercent(state.cpu.get(rec.id), s);
  if (s.live) state.cpu.set(rec.id, { cpuUsageNs: s.stats.cpuUsageNs, atNs: s.atNs });
  else state.cpu.delete(rec.id);
  return metricsView(rec, s, pct, new Date().toISOString());
}

const STATES = ['created', 'running', 'paused', 'exited', 'removing'] as const;
const KINDS = ['container', 'vm'] as const;

/** Every figure of `/metrics`. */
export async function prometheusFamilies(engine: Engine, state: HullApiState): Promise<MetricFamily[]> {
  const recs = engine.store.list();
  const counts = new Map<string, number>();
  for (const r of recs) counts.set(`${r.kind}/${r.state}`, (counts.get(`${r.kind}/${r.state}`) ?? 0) + 1);
  const per = await Promise.all(recs.filter(live).map((r) => instanceMetrics(engine, r, state)));
  const h = hostMetrics(engine);
  const lbl = (m: { id: string; name: string; kind: string }) => ({ id: m.id, name: m.name, kind: m.kind });
  const perInstance = (name: string, help: string, type: 'gauge' | 'counter', f: (m: (typeof per)[0]) => number) => ({
    name,
    help,
    type,
    samples: per.map((m) => ({ labels: lbl(m), value: f(m) })),
  });
  return [
    {
      name: 'hull_instances',
      help: 'Instances, by kind and state.',
      type: 'gauge',
      samples: KINDS.flatMap((kind) =>
        STATES.map((st) => ({ labels: { kind, state: st }, value: counts.get(`${kind}/${st}`) ?? 0 })),
      ),
    },
    perInstance(
      'hull_instance_cpu_seconds_total',
      'CPU time used by a running instance.',
      'counter',
      (m) => m.cpuSeconds,
    ),
    perInstance('hull_instance_memory_bytes', 'Memory used by a running instance.', 'gauge', (m) => m.memoryBytes),
    perInstance(
      'hull_instance_memory_limit_bytes',
      "A running instance's memory limit.",
      'gauge',
      (m) => m.memoryLimitBytes,
    ),
    perInstance('hull_instance_pids', 'Processes in a running instance.', 'gauge', (m) => m.pids),
    perInstance(
      'hull_instance_network_receive_bytes_total',
      'Bytes received by a running instance.',
      'counter',
      (m) => m.networkReceiveBytes,
    ),
    perInstance(
      'hull_instance_network_transmit_bytes_total',
      'Bytes sent by a running instance.',
      'counter',
      (m) => m.networkTransmitBytes,
    ),
    { name: 'hull_host_cpus', help: "The host's CPUs.", type: 'gauge', samples: [{ value: h.cpu.count }] },
    {
      name: 'hull_host_cpu_seconds_total',
      help: "The host's CPU time since boot, all CPUs, by mode.",
      type: 'counter',
      samples: [
        { labels: { mode: 'user' }, value: h.cpu.userSeconds },
        { labels: { mode: 'system' }, value: h.cpu.systemSeconds },
        { labels: { mode: 'idle' }, value: h.cpu.idleSeconds },
      ],
    },
    {
      name: 'hull_host_load_average',
      help: "The host's load average, by period.",
      type: 'gauge',
      samples: (['1m', '5m', '15m'] as const).map((period, i) => ({ labels: { period }, value: h.cpu.load[i]! })),
    },
    {
      name: 'hull_host_memory_total_bytes',
      help: "The host's memory.",
      type: 'gauge',
      samples: [{ value: h.memory.totalBytes }],
    },
    {
      name: 'hull_host_memory_available_bytes',
      help: "The host's memory available without swapping.",
      type: 'gauge',
      samples: [{ value: h.memory.availableBytes }],
    },
    {
      name: 'hull_host_disk_total_bytes',
      help: "Size of the file system of hull's root.",
      type: 'gauge',
      samples: [{ labels: { path: h.disk.path }, value: h.disk.totalBytes }],
    },
    {
      name: 'hull_host_disk_available_bytes',
      help: "Space available on the file system of hull's root.",
      type: 'gauge',
      samples: [{ labels: { path: h.disk.path }, value: h.disk.availableBytes }],
    },
    {
      name: 'hull_host_network_receive_bytes_total',
      help: 'Bytes received by a host network interface.',
      type: 'counter',
      samples: h.network.map((i) => ({ labels: { interface: i.name }, value: i.rxBytes })),
    },
    {
      name: 'hull_host_network_transmit_bytes_total',
      help: 'Bytes sent by a host network interface.',
      type: 'counter',
      samples: h.network.map((i) => ({ labels: { interface: i.name }, value: i.txBytes })),
    },
    ...(state.live?.families() ?? []),
  ];
}

function volumeView(engine: Engine, v: ReturnType<typeof listVolumes>[number]) {
  return {
    name: v.name,
    driver: v.driver,
    mountpoint: v.mountpoint,
    created: v.createdAt,
    labels: v.labels,
    anonymous: v.anonymous,
    pool: v.pool ?? 'default',
    type: v.type ?? 'filesystem',
    size: v.size ?? null,
    usedBy: volumeUsers(engine, v.name).map((u) => u.id),
  };
}

/** A storage pool as the API shows it: its space now (statfs of its filesystem) and its volumes. */
function poolView(engine: Engine, p: PoolRecord) {
  const space = poolSpace(p);
  return {
    name: p.name,
    driver: p.driver,
    path: p.path,
    source: p.source ?? null,
    quotas: p.driver === 'btrfs' || (p.driver === 'xfs' && p.quotas === true),
    size: space.size,
    used: space.used,
    free: space.free,
    volumes: poolVolumes(engine, p.name).map((v) => v.name),
    created: p.createdAt || null,
  };
}

export function hullRoutes(r: Router, state: HullApiState): void {
  const P = PREFIX;
  const answer = async (engine: Engine, res: ServerResponse, rec: InstanceRecord, status = 200) => {
    const cur = await refreshForView(engine, rec);
    if (!cur) return noContent(res);
    sendJson(res, status, instanceShapeOf(engine, cur));
  };

  r.on('GET', `${P}/openapi.json`, async (_c, res) => sendJson(res, 200, openapi));

  r.on('GET', `${P}/instances`, async (c, res) => {
    // the engine's listing (hull ps, docker's /containers/json), newest first: docker's filters as JSON in
    // ?filters=, and kind=, state=, label=, name= (each repeatable)
    const f: FilterMap = parseFilterJson(c.query.get('filters') ?? '');
    const keys = { kind: 'isolation', state: 'status', label: 'label', name: 'name' } as const;
    for (const [key, as] of Object.entries(keys)) for (const v of c.query.getAll(key)) (f[as] ??= []).push(v);
    const recs = await listInstances(c.engine, { all: true, filters: f });
    sendJson(
      res,
      200,
      recs.map((r) => instanceShapeOf(c.engine, r)),
    );
  });

  r.on('POST', `${P}/instances`, async (c, res) => {
    const req = createRequestOf(await c.body());
    await imageOf(c.engine, req.image);
    const rec = await createInstance(c.engine, req);
    sendJson(res, 201, instanceShapeOf(c.engine, rec));
  });

  r.on('GET', `${P}/instances/{id}`, async (c, res) => {
    sendJson(res, 200, instanceShapeOf(c.engine, await instanceOf(c.engine, c.params.id!)));
  });

  r.on('DELETE', `${P}/instances/{id}`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    const force = flag(c.query, 'force');
    if (live(rec) && !force)
      throw new ApiError(409, `instance ${rec.name} is ${rec.state}: stop it first, or remove it with ?force=1`);
    await removeInstance(c.engine, rec, { force });
    noContent(res);
  });

  r.on('PATCH', `${P}/instances/{id}`, async (c, res) => {
    // live changes of resources (the engine's update verb: applied to a running instance, kept for later starts)
    const b = checkBody<{ resources?: { memory?: number; cpus?: number; pidsLimit?: number } }>(
      'UpdateInstance',
      await c.body(),
    );
    const rec = await instanceOf(c.engine, c.params.id!);
    const changes = b.resources ?? {};
    await updateInstance(c.engine, rec, {
      ...(changes.memory !== undefined ? { memory: changes.memory } : {}),
      ...(changes.cpus !== undefined ? { cpus: changes.cpus } : {}),
      ...(changes.pidsLimit !== undefined ? { pidsLimit: changes.pidsLimit } : {}),
    });
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/start`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    if (live(rec)) throw new ApiError(409, `instance ${rec.name} is already ${rec.state}`);
    if (flag(c.query, 'async')) {
      // a long start (a VM's boot): an operation whose phases tell the boot; the result is the instance
      const engine = c.engine;
      const op = state.operations.start(
        'boot',
        rec.name,
        async (_signal, progress) => {
          progress.phase(0, START_PHASES.length, 'starting');
          await startInstance(engine, rec, {
            onPhase: (n, what) => progress.phase(n, START_PHASES.length, what),
          });
          const cur = await refreshForView(engine, rec);
          return cur ? (instanceShapeOf(engine, cur) as unknown as Record<string, unknown>) : {};
        },
        { cancellable: false },
      );
      return sendJson(res, 202, op);
    }
    await startInstance(c.engine, rec);
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/stop`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    const t = seconds(c.query);
    if (!live(rec)) throw new ApiError(409, `instance ${rec.name} is not running (${rec.state})`);
    await stopInstance(c.engine, rec, t);
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/restart`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    await restartInstance(c.engine, rec, seconds(c.query));
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/kill`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    const sig = c.query.get('signal');
    const signal = sig ? parseSignal(/^\d+$/.test(sig) ? sig : sig.toUpperCase()) : 'SIGKILL';
    if (!live(rec)) throw new ApiError(409, `instance ${rec.name} is not running (${rec.state})`);
    await killInstance(c.engine, rec, signal);
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/pause`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    await pauseInstance(c.engine, rec);
    await answer(c.engine, res, rec);
  });

  r.on('POST', `${P}/instances/{id}/unpause`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    await unpauseInstance(c.engine, rec);
    await answer(c.engine, res, rec);
  });

  r.on('GET', `${P}/instances/{id}/metrics`, async (c, res) => {
    const rec = await instanceOf(c.engine, c.params.id!);
    sendJson(res, 200, await instanceMetrics(c.engine, rec, state));
  });

  r.on('GET', `${P}/images`, async (c, res) => {
    sendJson(res, 200, (await c.engine.images.list()).map(imageView));
  });

  r.on('POST', `${P}/images/pull`, async (c, res) => {
    const b = checkBody<{ image: string; platform?: string }>(
      // an inline schema: the request body of /images/pull
      'PullImage',
      await c.body(),
    );
    const engine = c.engine;
    const op = state.operations.start('pull', b.image, async (signal, progress) => {
      const img = await pull(engine, b.image, {
        ...(b.platform ? { platform: b.platform } : {}),
        signal,
        onEvent: (e) => {
          if (e.kind !== 'blob') return;
          progress.layer({ digest: e.digest, state: e.state, current: e.done, total: e.size });
        },
      });
      return { imageId: img.id, names: img.names, digest: img.manifestDigest };
    });
    sendJson(res, 202, op);
  });

  r.on('GET', `${P}/images/{name*}/history`, async (c, res) => {
    sendJson(res, 200, imageHistory(await imageOf(c.engine, c.params.name!)));
  });

  r.on('POST', `${P}/images/build`, async (c, res) => {
    // the context is received before the answer (a bad archive is a 400); the build is an operation
    const rc = await receiveContext(c);
    const engine = c.engine;
    const op = state.operations.start(
      'build',
      rc.tags[0] ?? '(untagged)',
      async (_signal, progress) => {
        try {
          const image = await buildReceived(
            engine,
            rc,
            (line) => {
              const m = /^STEP (\d+)\/(\d+): /.exec(line);
              if (m) progress.phase(Number(m[1]), Number(m[2]), line);
              progress.line(line);
            },
            (text) => {
              for (const l of text.split('\n')) if (l) progress.line(l);
            },
          );
          return { imageId: image.id, tags: rc.tags };
        } finally {
          rmSync(rc.scratch, { recursive: true, force: true });
        }
      },
      { cancellable: false },
    );
    sendJson(res, 202, op);
  });

  r.on('GET', `${P}/images/{name*}`, async (c, res) => {
    sendJson(res, 200, imageDetail(await imageOf(c.engine, c.params.name!)));
  });

  r.on('DELETE', `${P}/images/{name*}`, async (c, res) => {
    const ref = c.params.name!;
    await imageOf(c.engine, ref);
    const force = flag(c.query, 'force');
    await checkImageRemovable(c.engine, ref, force);
    const lines = await removeImage(c.engine, ref, force);
    const pick = (k: string) => lines.filter((l) => l.startsWith(`${k}: `)).map((l) => l.slice(k.length + 2));
    sendJson(res, 200, { untagged: pick('Untagged'), deleted: pick('Deleted') });
  });

  r.on('GET', `${P}/networks`, async (c, res) => {
    sendJson(
      res,
      200,
      c.engine.networks.store.list().map((d) => networkView(d, c.engine.networks.users(d.name))),
    );
  });

  r.on('POST', `${P}/networks`, async (c, res) => {
    const b = checkBody<{
      name: string;
      subnet?: string;
      gateway?: string;
      ipRange?: string;
      internal?: boolean;
      mtu?: number;
      labels?: Record<string, string>;
    }>('CreateNetwork', await c.body());
    const def = await c.engine.networks.create({
      name: b.name,
      ...(b.subnet ? { subnet: b.subnet } : {}),
      ...(b.gateway ? { gateway: b.gateway } : {}),
      ...(b.ipRange ? { ipRange: b.ipRange } : {}),
      internal: b.internal === true,
      dns: true,
      ...(b.mtu ? { mtu: b.mtu } : {}),
      labels: b.labels ?? {},
    });
    sendJson(res, 201, networkView(def, []));
  });

  r.on('GET', `${P}/networks/{name}`, async (c, res) => {
    const d = networkOf(c.engine, c.params.name!);
    sendJson(res, 200, networkView(d, c.engine.networks.users(d.name)));
  });

  r.on('DELETE', `${P}/networks/{name}`, async (c, res) => {
    await removeNetwork(c.engine, networkOf(c.engine, c.params.name!).name);
    noContent(res);
  });

  r.on('GET', `${P}/volumes`, async (c, res) => {
    // volumes in storage pools (engine/volumes.ts): pool, type and size (bytes; null without a quota)
    sendJson(res, 200, { volumes: listVolumes(c.engine).map((v) => volumeView(c.engine, v)) });
  });

  r.on('POST', `${P}/volumes`, async (c, res) => {
    const b = checkBody<{
      name?: string;
      labels?: Record<string, string>;
      pool?: string;
      size?: number;
      type?: 'filesystem' | 'block';
    }>('CreateVolume', await c.body());
    if (b.name && listVolumes(c.engine).some((v) => v.name === b.name))
      throw new ApiError(409, `volume ${b.name} already exists`);
    const v = createVolume(c.engine, {
      ...(b.name ? { name: b.name } : {}),
      labels: b.labels ?? {},
      ...(b.pool ? { pool: b.pool } : {}),
      ...(b.size !== undefined ? { size: b.size } : {}),
      ...(b.type ? { type: b.type } : {}),
    });
    sendJson(res, 201, volumeView(c.engine, v));
  });

  r.on('GET', `${P}/volumes/{name}`, async (c, res) => {
    sendJson(res, 200, volumeView(c.engine, inspectVolume(c.engine, c.params.name!)));
  });

  r.on('DELETE', `${P}/volumes/{name}`, async (c, res) => {
    // in use: 409 (force or not, as docker); unknown: 404
    removeVolume(c.engine, c.params.name!);
    noContent(res);
  });

  r.on('GET', `${P}/storage/pools`, async (c, res) => {
    sendJson(
      res,
      200,
      listPools(c.engine.root).map((p) => poolView(c.engine, p)),
    );
  });

  r.on('POST', `${P}/storage/pools`, async (c, res) => {
    // as `hull storage pool create`: a loop image under the root (btrfs, xfs; size in bytes, default 1 GiB), or
    // source: a block device or image file to format, or a directory to use as it is
    const b = checkBody<{ name: string; driver: string; size?: number; source?: string }>(
      'CreateStoragePool',
      await c.body(),
    );
    const p = await createStoragePool(c.engine, {
      name: b.name,
      driver: b.driver,
      ...(b.size !== undefined ? { size: b.size } : {}),
      ...(b.source !== undefined ? { source: b.source } : {}),
    });
    sendJson(res, 201, poolView(c.engine, p));
  });

  r.on('GET', `${P}/storage/pools/{name}`, async (c, res) => {
    sendJson(res, 200, poolView(c.engine, getPool(c.engine.root, c.params.name!)));
  });

  r.on('DELETE', `${P}/storage/pools/{name}`, async (c, res) => {
    // the default pool, or one holding volumes: 409; unknown: 404
    await removeStoragePool(c.engine, c.params.name!);
    noContent(res);
  });

  r.on('GET', `${P}/operations`, async (_c, res) => sendJson(res, 200, state.operations.list()));

  r.on('GET', `${P}/operations/{id}`, async (c, res) => {
    const op = state.operations.get(c.params.id!);
    if (!op) throw new ApiError(404, `no operation ${c.params.id}: operations live as long as the daemon`);
    sendJson(res, 200, op);
  });

  r.on('DELETE', `${P}/operations/{id}`, async (c, res) => {
    const op = state.operations.get(c.params.id!);
    if (!op) throw new ApiError(404, `no operation ${c.params.id}`);
    if (op.state === 'running' && !state.operations.cancellable(op.id))
      throw new ApiError(409, `operation ${op.id} (${op.kind}) cannot be cancelled: wait for it to end`);
    if (!state.operations.cancel(op.id)) throw new ApiError(409, `operation ${op.id} has already ${op.state}`);
    sendJson(res, 200, op);
  });

  r.on('GET', `${P}/host/metrics`, async (c, res) => sendJson(res, 200, hostMetrics(c.engine)));

  r.on('GET', '/metrics', async (c, res) => {
    const body = Buffer.from(exposition(await prometheusFamilies(c.engine, state)));
    res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Content-Length': body.length });
    res.end(c.req.method === 'HEAD' ? undefined : body);
  });
}
