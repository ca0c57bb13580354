/**
 * Live data for the web console without polling storms: one sampler hub per daemon samples each watched instance
 * (the engine's sampleInstance, as `hull stats` does) once per interval, and the host once per interval, however
 * many clients watch; every watcher of a tick gets the same frame (serialized once). Nothing is sampled while
 * nobody watches. Event streams (ws.ts's /hull/v1/events) share one reader of the store the same way.
 *
 * WebSocket endpoints (JSON text frames; the server never reads the client's frames):
 * - `/hull/v1/instances/{id}/stats/stream`: an InstanceMetrics frame per interval (closes 1000 when the instance
 *   is removed);
 * - `/hull/v1/stats/stream`: `{time, instances: [InstanceMetrics…]}` per interval, every running or paused instance;
 * - `/hull/v1/host/metrics/stream`: a HostMetrics frame per interval;
 * - `/hull/v1/instances/{id}/logs?follow=1&tail=N&timestamps=1`: one `{stream, time, line}` frame per log line
 *   (closes 1000 when the log ends: at once without follow, when the instance stops with it).
 */
import { WebSocket } from 'ws';
import type { Engine } from '../../engine/engine.js';
import { cpuPercent, hostMetrics, sampleInstance } from '../../engine/metrics.js';
import { instanceLogs } from '../../engine/output.js';
import type { EventRecord, InstanceRecord } from '../../engine/store.js';
import { ApiError, flag } from '../http.js';
import type { MetricFamily } from './prometheus.js';
import { metricsView } from './shapes.js';

/** How often the hub samples what is watched. */
export const LIVE_INTERVAL_MS = 1000;
/** How often the hub reads new events from the store while someone follows them. */
export const EVENTS_INTERVAL_MS = 200;
/** At most this many instances are sampled at once (a host with hundreds does not spike). */
const SAMPLE_CONCURRENCY = 16;

type Watcher = (frame: string) => void;

const live = (r: InstanceRecord) => r.state === 'running' || r.state === 'paused';

async function mapLimited<T, R>(items: T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The daemon's sampler hub. */
export class LiveHub {
  private readonly byInstance = new Map<string, Set<Watcher>>();
  private readonly allWatchers = new Set<Watcher>();
  private readonly hostWatchers = new Set<Watcher>();
  /** the previous sample of each instance, for CPU percentages */
  private readonly prev = new Map<string, { cpuUsageNs: number; atNs: number }>();
  /** followers of the event stream, each with the last event it got */
  private readonly eventWatchers = new Map<(e: EventRecord) => void, { after: number }>();
  private eventTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** counters, for /metrics (and the tests: one sample per instance per interval) */
  instanceSamples = 0;
  hostSamples = 0;
  eventReads = 0;
  ticks = 0;

  constructor(
    private readonly engine: Engine,
    private readonly intervalMs = LIVE_INTERVAL_MS,
  ) {}

  /** Watch one instance: `w` gets a frame per interval until the returned function is called. */
  watchInstance(id: string, w: Watcher): () => void {
    let set = this.byInstance.get(id);
    if (!set) this.byInstance.set(id, (set = new Set()));
    set.add(w);
    this.kick();
    return () => {
      set.delete(w);
      if (set.size === 0 && this.byInstance.get(id) === set) this.byInstance.delete(id);
      this.settle();
    };
  }

  watchAll(w: Watcher): () => void {
    this.allWatchers.add(w);
    this.kick();
    return () => {
      this.allWatchers.delete(w);
      this.settle();
    };
  }

  watchHost(w: Watcher): () => void {
    this.hostWatchers.add(w);
    this.kick();
    return () => {
      this.hostWatchers.delete(w);
      this.settle();
    };
  }

  /**
   * Follow the events recorded after `after` (a seq): one reader of the store every 200 ms for every follower,
   * each given what is newer than what it has.
   */
  watchEvents(after: number, w: (e: EventRecord) => void): () => void {
    this.eventWatchers.set(w, { after });
    this.eventTimer ??= setInterval(() => this.readEvents(), EVENTS_INTERVAL_MS);
    return () => {
      this.eventWatchers.delete(w);
      if (this.eventWatchers.size === 0) {
        clearInterval(this.eventTimer);
        this.eventTimer = undefined;
      }
    };
  }

  private readEvents(): void {
    if (!this.eventWatchers.size) return;
    let from = Number.MAX_SAFE_INTEGER;
    for (const { after } of this.eventWatchers.values()) from = Math.min(from, after);
    this.eventReads++;
    const events = this.engine.store.events(from);
    if (!events.length) return;
    for (const [w, pos] of [...this.eventWatchers]) {
      for (const e of events) if (e.seq > pos.after) w(e);
      pos.after = Math.max(pos.after, events.at(-1)!.seq);
    }
  }

  /** How many clients watch now. */
  watchers(): number {
    let n = this.allWatchers.size + this.hostWatchers.size + this.eventWatchers.size;
    for (const s of this.byInstance.values()) n += s.size;
    return n;
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.eventTimer);
    this.timer = undefined;
    this.eventTimer = undefined;
    this.eventWatchers.clear();
    this.byInstance.clear();
    this.allWatchers.clear();
    this.hostWatchers.clear();
  }

  /** The hub's figures for Prometheus' /metrics. */
  families(): MetricFamily[] {
    return [
      {
        name: 'hull_live_watchers',
        help: "Clients watching the daemon's live streams (stats, host metrics, events).",
        type: 'gauge',
        samples: [{ value: this.watchers() }],
      },
      {
        name: 'hull_live_instance_samples_total',
        help: "Instance samples the live streams' hub took (one per watched instance per interval).",
        type: 'counter',
        samples: [{ value: this.instanceSamples }],
      },
      {
        name: 'hull_live_event_reads_total',
        help: 'Reads of new events from the store for the event streams (one per 200 ms while followed).',
        type: 'counter',
        samples: [{ value: this.eventReads }],
      },
      {
        name: 'hull_live_host_samples_total',
        help: "Host samples the live streams' hub took (one per interval while watched).",
        type: 'counter',
        samples: [{ value: this.hostSamples }],
      },
    ];
  }

  /** Start ticking when the first client watches: the first frame comes at once. */
  private kick(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
  }

  private settle(): void {
    if (this.watchers() - this.eventWatchers.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.prev.clear();
    }
  }

  private async tick(): Promise<void> {
    // a slow tick (a stuck driver) is not stacked on: the next interval skips
    if (this.ticking) return;
    this.ticking = true;
    try {
      this.ticks++;
      const time = new Date().toISOString();
      if (this.hostWatchers.size) {
        this.hostSamples++;
        const frame = JSON.stringify(hostMetrics(this.engine));
        for (const w of this.hostWatchers) w(frame);
      }
      if (!this.allWatchers.size && !this.byInstance.size) return;
      const recs = new Map<string, InstanceRecord>();
      if (this.allWatchers.size) for (const r of this.engine.store.list()) if (live(r)) recs.set(r.id, r);
      for (const [id, set] of this.byInstance) {
        if (recs.has(id)) continue;
        const r = this.engine.store.get(id);
        if (r) recs.set(id, r);
        else {
          // removed: its watchers' streams end
          for (const w of set) w('');
          this.byInstance.delete(id);
        }
      }
      const views = await mapLimited([...recs.values()], SAMPLE_CONCURRENCY, async (rec) => {
        const s = await sampleInstance(this.engine, rec);
        this.instanceSamples++;
        const pct = cpuPercent(this.prev.get(rec.id), s);
        if (s.live) this.prev.set(rec.id, { cpuUsageNs: s.stats.cpuUsageNs, atNs: s.atNs });
        else this.prev.delete(rec.id);
        return metricsView(rec, s, pct, time);
      });
      for (const v of views) {
        const set = this.byInstance.get(v.id);
        if (!set?.size) continue;
        const frame = JSON.stringify(v);
        for (const w of set) w(frame);
      }
      if (this.allWatchers.size) {
        const frame = JSON.stringify({ time, instances: views.filter(recsLive) });
        for (const w of this.allWatchers) w(frame);
      }
      for (const id of this.prev.keys()) if (!recs.has(id)) this.prev.delete(id);
    } finally {
      this.ticking = false;
    }
  }
}

const recsLive = (v: { state: string }) => v.state === 'running' || v.state === 'paused';

// ----- the WebSocket side -----

interface LiveCall {
  engine: Engine;
  params: Record<string, string>;
  query: URLSearchParams;
  ws: WebSocket;
  signal: AbortSignal;
}

/** A stream of hub frames to one client until it leaves, the daemon stops, or the hub ends it (an empty frame). */
function relay(c: LiveCall, watch: (w: Watcher) => () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = watch((frame) => {
      if (frame === '') return finish();
      // a client that does not keep up skips frames instead of queueing them
      if (c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount < 1024 * 1024) c.ws.send(frame);
    });
    const finish = () => {
      stop();
      resolve();
    };
    if (c.signal.aborted) finish();
    else c.signal.addEventListener('abort', finish, { once: true });
  });
}

/** The live WebSocket routes, for ws.ts's table. */
export function liveWsRoutes(
  hubOf: (engine: Engine) => LiveHub,
  instanceOf: (engine: Engine, ref: string) => Promise<InstanceRecord>,
): {
  path: string;
  run: (c: LiveCall, checked: unknown) => Promise<void>;
  check?: (c: Omit<LiveCall, 'ws' | 'signal'>) => Promise<unknown>;
}[] {
  return [
    {
      path: '/instances/{id}/stats/stream',
      check: (c) => instanceOf(c.engine, c.params.id!),
      run: (c, rec) => relay(c, (w) => hubOf(c.engine).watchInstance((rec as InstanceRecord).id, w)),
    },
    { path: '/stats/stream', run: (c) => relay(c, (w) => hubOf(c.engine).watchAll(w)) },
    { path: '/host/metrics/stream', run: (c) => relay(c, (w) => hubOf(c.engine).watchHost(w)) },
    {
      path: '/instances/{id}/logs',
      check: async (c) => {
        const rec = await instanceOf(c.engine, c.params.id!);
        const tail = c.query.get('tail');
        if (tail !== null && tail !== 'all' && !/^\d+$/.test(tail))
          throw new ApiError(400, `invalid tail "${tail}": expected a number of lines or "all"`);
        return rec;
      },
      run: async (c, checked) => {
        const rec = checked as InstanceRecord;
        const tail = c.query.get('tail');
        await instanceLogs(
          c.engine,
          rec,
          {
            follow: flag(c.query, 'follow'),
            ...(tail !== null && tail !== 'all' ? { tail: Number(tail) } : {}),
          },
          (l) => {
            if (c.ws.readyState !== WebSocket.OPEN) return;
            // a client that stops reading is let go rather than buffered for without end
            if (c.ws.bufferedAmount > 8 * 1024 * 1024) return c.ws.close(1013, 'the client does not keep up');
            const line = l.text.endsWith('\n') ? l.text.slice(0, -1) : l.text;
            c.ws.send(JSON.stringify({ stream: l.stream, time: l.time, line }));
          },
          c.signal,
        );
      },
    },
  ];
}
