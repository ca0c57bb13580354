/**
 * docker's endpoints beyond the lifecycle: top, stats (one-shot and streamed), update, the prunes, events
 * (streamed, with filters and since/until), network connect/disconnect, image history (volumes: volumes.ts).
 */
import { instanceSizes, volumeUsage } from '../../engine/disk-usage.js';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { InstanceStats, Resources } from '../../common/instance.js';
import { parseRestart } from '../../common/parse.js';
import type { Engine } from '../../engine/engine.js';
import type { EventRecord, InstanceRecord } from '../../engine/store.js';
import { refresh } from '../../engine/lifecycle/exit.js';
import { updateInstance } from '../../engine/lifecycle/update.js';
import { pruneInstances, pruneNetworks } from '../../engine/prune.js';
import { pruneImages } from '../../engine/images.js';
import { sampleInstance, ZERO_STATS } from '../../engine/metrics.js';
import { connectInstance, disconnectInstance } from '../../engine/networking.js';
import { ApiError, filters, flag, noContent, type Router, sendJson } from '../http.js';
import type { Streams } from '../streams.js';
import { containerListEntry, lookupContainer } from './containers.js';
import { imageListEntry } from './images.js';
import { volumeEntry } from './volumes.js';

const live = (r: InstanceRecord) => r.state === 'running' || r.state === 'paused';

/** The host's CPU time so far in ns (docker's system_cpu_usage): /proc/stat's first line, in clock ticks. */
function systemCpuNs(): number {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const ticks = first
      .trim()
      .split(/\s+/)
      .slice(1, 8)
      .reduce((a, b) => a + Number(b), 0);
    return ticks * 1e7; // USER_HZ is 100
  } catch {
    return 0;
  }
}

interface Sample {
  at: Date;
  system: number;
  s: InstanceStats;
}

function cpuStats(x: Sample | undefined): Record<string, unknown> {
  return {
    cpu_usage: {
      total_usage: x?.s.cpuUsageNs ?? 0,
      percpu_usage: null,
      usage_in_kernelmode: 0,
      usage_in_usermode: x?.s.cpuUsageNs ?? 0,
    },
    system_cpu_usage: x?.system ?? 0,
    online_cpus: cpus().length,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  };
}

/** One entry of docker's stats stream. */
function statsEntry(rec: InstanceRecord, cur: Sample, prev: Sample | undefined): Record<string, unknown> {
  const s = cur.s;
  return {
    read: cur.at.toISOString(),
    preread: prev ? prev.at.toISOString() : '0001-01-01T00:00:00Z',
    id: rec.id,
    name: `/${rec.name}`,
    pids_stats: { current: s.pids },
    blkio_stats: {
      io_service_bytes_recursive: [
        { major: 0, minor: 0, op: 'Read', value: s.blkioRead },
        { major: 0, minor: 0, op: 'Write', value: s.blkioWrite },
      ],
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(cur),
    precpu_stats: cpuStats(prev),
    memory_stats: { usage: s.memoryUsage, limit: s.memoryLimit, stats: {} },
    networks: {
      eth0: {
        rx_bytes: s.netRx,
        tx_bytes: s.netTx,
        rx_packets: 0,
        tx_packets: 0,
        rx_errors: 0,
        tx_errors: 0,
        rx_dropped: 0,
        tx_dropped: 0,
      },
    },
  };
}

/** Docker's event object of a hull event. */
function dockerEvent(e: EventRecord): Record<string, unknown> {
  const type = e.type === 'network' || e.type === 'image' || e.type === 'volume' ? e.type : 'container';
  return {
    status: e.action,
    id: e.id,
    from: e.attributes.image ?? '',
    Type: type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: e.attributes },
    scope: 'local',
    time: Math.floor(e.time / 1000),
    timeNano: e.time * 1e6,
  };
}

function eventMatches(ev: Record<string, unknown>, e: EventRecord, f: Record<string, string[]>): boolean {
  const any = (k: string, test: (v: string) => boolean) => !f[k]?.length || f[k]!.some(test);
  return (
    any('type', (v) => v === ev.Type) &&
    any('event', (v) => v === e.action) &&
    any('container', (v) => e.id.startsWith(v) || e.name === v) &&
    any('image', (v) => e.attributes.image === v) &&
    (f.label ?? []).every((v) => {
      const i = v.indexOf('=');
      return i < 0 ? v in e.attributes : e.attributes[v.slice(0, i)] === v.slice(i + 1);
    })
  );
}

/** docker's since/until: unix seconds (with a fraction) or an RFC 3339 time → ms. */
function timeParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ApiError(400, `invalid ${name} "${v}": expected unix seconds or an RFC 3339 time`);
  return t;
}

function resourcesOf(b: Record<string, unknown>): Resources {
  const num = (k: string): number | undefined => {
    const v = b[k];
    if (v === undefined || v === null || v === 0) return undefined;
    if (typeof v !== 'number') throw new ApiError(400, `invalid ${k}: expected a number`);
    return v;
  };
  const r: Resources = {};
  const memory = num('Memory');
  if (memory !== undefined) r.memory = memory;
  const swap = num('MemorySwap');
  if (swap !== undefined) r.memorySwap = swap;
  const nano = num('NanoCpus');
  if (nano !== undefined) r.cpus = nano / 1e9;
  const shares = num('CpuShares');
  if (shares !== undefined) r.cpuShares = shares;
  const pids = num('PidsLimit');
  if (pids !== undefined) r.pidsLimit = pids;
  const blkio = num('BlkioWeight');
  if (blkio !== undefined) r.blkioWeight = blkio;
  if (typeof b.CpusetCpus === 'string' && b.CpusetCpus) r.cpusetCpus = b.CpusetCpus;
  return r;
}

async function running(engine: Engine, ref: string): Promise<InstanceRecord> {
  const rec = await refresh(engine, lookupContainer(engine, ref));
  if (!rec || !live(rec)) throw new ApiError(409, `Container ${ref} is not running`);
  return rec;
}

export function extraRoutes(r: Router, streams: Streams): void {
  r.on('GET', '/containers/{id}/top', async (c, res) => {
    const rec = await running(c.engine, c.params.id!);
    const psArgs = (c.query.get('ps_args') ?? '').split(/\s+/).filter(Boolean);
    const info = await c.engine.driver(rec.kind).top(c.engine.context(rec), psArgs);
    sendJson(res, 200, { Titles: info.titles, Processes: info.rows });
  });

  r.on('GET', '/containers/{id}/stats', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const stream = c.query.get('stream') === null || flag(c.query, 'stream');
    const oneShot = flag(c.query, 'one-shot');
    // the engine's sample, as `hull stats` and /hull/v1 take it; docker's JSON also wants the host's CPU time
    const sample = async (): Promise<Sample | undefined> => {
      const cur = await refresh(c.engine, rec);
      if (!cur || !live(cur)) return undefined;
      const m = await sampleInstance(c.engine, cur);
      return m.live ? { at: new Date(), system: systemCpuNs(), s: m.stats } : undefined;
    };
    const empty = (): Sample => ({ at: new Date(), system: systemCpuNs(), s: { ...ZERO_STATS } });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const ac = streams.track(res);
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        ac.signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    try {
      let prev = await sample();
      if (!stream) {
        // one answer; with precpu filled from a sample half a second earlier unless one-shot
        if (!oneShot && prev) await wait(500);
        const cur = oneShot ? prev : await sample();
        res.end(JSON.stringify(statsEntry(rec, cur ?? empty(), oneShot ? undefined : prev)) + '\n');
        return;
      }
      for (;;) {
        await wait(1000);
        if (ac.signal.aborted) break;
        const cur = await sample();
        res.write(JSON.stringify(statsEntry(rec, cur ?? empty(), prev)) + '\n');
        if (!cur) break;
        prev = cur;
      }
      res.end();
    } finally {
      streams.untrack(res);
    }
  });

  r.on('POST', '/containers/{id}/update', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const b = await c.body();
    const rp = b.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined;
    const restart = rp?.Name
      ? parseRestart(rp.Name === 'on-failure' && rp.MaximumRetryCount ? `on-failure:${rp.MaximumRetryCount}` : rp.Name)
      : undefined;
    await updateInstance(c.engine, rec, resourcesOf(b), restart);
    sendJson(res, 200, { Warnings: [] });
  });

  r.on('POST', '/containers/prune', async (c, res) => {
    const errors: string[] = [];
    const removed = await pruneInstances(c.engine, errors);
    if (errors.length) throw new ApiError(500, errors.join('; '));
    sendJson(res, 200, { ContainersDeleted: removed, SpaceReclaimed: 0 });
  });

  r.on('POST', '/images/prune', async (c, res) => {
    const f = filters(c.query);
    const all = f.dangling?.[0] === 'false' || f.dangling?.[0] === '0';
    const r2 = await pruneImages(c.engine, all);
    sendJson(res, 200, {
      ImagesDeleted: r2.images.map((id) => ({ Deleted: id })),
      SpaceReclaimed: r2.gc.reclaimed,
    });
  });

  r.on('POST', '/networks/prune', async (c, res) => {
    const errors: string[] = [];
    const removed = await pruneNetworks(c.engine, errors);
    if (errors.length) throw new ApiError(500, errors.join('; '));
    sendJson(res, 200, { NetworksDeleted: removed });
  });

  r.on('POST', '/networks/{id}/connect', async (c, res) => {
    const b = await c.body();
    if (typeof b.Container !== 'string') throw new ApiError(400, 'connect needs a Container');
    const ep = (b.EndpointConfig ?? {}) as { IPAMConfig?: { IPv4Address?: string }; Aliases?: string[] };
    const rec = lookupContainer(c.engine, b.Container);
    const net = c.engine.networks.store.get(c.params.id!);
    await connectInstance(c.engine, rec, net.name, {
      ...(ep.IPAMConfig?.IPv4Address ? { ip: ep.IPAMConfig.IPv4Address } : {}),
      ...(Array.isArray(ep.Aliases) && ep.Aliases.length ? { aliases: ep.Aliases } : {}),
    });
    noContent(res, 200);
  });

  r.on('POST', '/networks/{id}/disconnect', async (c, res) => {
    const b = await c.body();
    if (typeof b.Container !== 'string') throw new ApiError(400, 'disconnect needs a Container');
    const rec = lookupContainer(c.engine, b.Container);
    await disconnectInstance(c.engine, rec, c.engine.networks.store.get(c.params.id!).name);
    noContent(res, 200);
  });

  r.on('GET', '/images/{name*}/history', async (c, res) => {
    const img = await c.engine.images.resolve(c.params.name!).catch(() => {
      throw new ApiError(404, `No such image: ${c.params.name}`);
    });
    const history = img.config.history ?? [];
    const layers = [...img.layers];
    const out = history.map((h) => {
      const size = h.empty_layer ? 0 : (layers.shift()?.size ?? 0);
      return {
        Id: '<missing>',
        Created: Math.floor(Date.parse(h.created ?? img.created) / 1000) || 0,
        CreatedBy: h.created_by ?? '',
        Tags: null,
        Size: size,
        Comment: h.comment ?? '',
      };
    });
    out.reverse();
    if (out[0]) Object.assign(out[0], { Id: img.id, Tags: img.names.filter((n) => !n.includes('@')) });
    sendJson(res, 200, out);
  });

  r.on('GET', '/events', async (c, res) => {
    const f = filters(c.query);
    const since = timeParam(c.query, 'since');
    const until = timeParam(c.query, 'until');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const ac = streams.track(res);
    try {
      // past events (with since), then new ones as they are recorded, until `until` or the client leaves
      let seq = since === undefined ? c.engine.store.lastEventSeq() : 0;
      const from = since ?? 0;
      for (;;) {
        for (const e of c.engine.store.events(seq, { since: from, ...(until !== undefined ? { until } : {}) })) {
          seq = e.seq;
          const ev = dockerEvent(e);
          if (eventMatches(ev, e, f)) res.write(JSON.stringify(ev) + '\n');
        }
        if (ac.signal.aborted || (until !== undefined && Date.now() > until)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      res.end();
    } finally {
      streams.untrack(res);
    }
  });

  r.on('GET', '/system/df', async (c, res) => {
    const recs = c.engine.store.list();
    const imgs = await c.engine.images.list();
    const layers = new Map<string, number>();
    for (const i of imgs) for (const l of i.layers) layers.set(l.digest, l.size);
    sendJson(res, 200, {
      LayersSize: [...layers.values()].reduce((a, b) => a + b, 0),
      Images: imgs.map((i) => ({ ...imageListEntry(i), Containers: recs.filter((r) => r.imageId === i.id).length })),
      Containers: await Promise.all(
        recs.map(async (r) => {
          const s = await instanceSizes(c.engine, r);
          return { ...containerListEntry(r, c.engine), SizeRw: s.rw, SizeRootFs: s.rootFs };
        }),
      ),
      // docker's UsageData: the bytes, and how many containers use it
      Volumes: volumeUsage(c.engine, recs).map((u) => ({
        ...volumeEntry(u.volume),
        UsageData: { Size: u.size, RefCount: u.links },
      })),
      BuildCache: [],
    });
  });
}
