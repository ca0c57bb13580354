/**
 * Live data shared by every page: one events socket for the whole app, and one stats stream for the instance
 * list (the daemon samples each instance once per interval however many pages watch it).
 */
import { useEffect, useState } from 'preact/hooks';
import { follow, get, type HullEvent, type InstanceMetrics, type Instance, socket } from './api.js';

type EventListener = (e: HullEvent) => void;
const eventListeners = new Set<EventListener>();
export const recentEvents: HullEvent[] = [];
let eventsSocket: WebSocket | undefined;

function openEvents(attempt = 0): void {
  const since = recentEvents.length ? Date.parse(recentEvents.at(-1)!.time) + 1 : Date.now() - 3600_000;
  const ws = socket(`/events?since=${since}`);
  eventsSocket = ws;
  let opened = false;
  ws.onmessage = (m) => {
    if (typeof m.data !== 'string') return;
    opened = true;
    const e = JSON.parse(m.data) as HullEvent & { subscribed?: boolean };
    if (e.subscribed) return;
    if (recentEvents.some((x) => x.seq === e.seq)) return;
    recentEvents.push(e);
    if (recentEvents.length > 500) recentEvents.splice(0, recentEvents.length - 500);
    for (const l of eventListeners) l(e);
  };
  ws.onclose = () => {
    if (eventsSocket !== ws) return;
    eventsSocket = undefined;
    if (attempt < 30) setTimeout(() => openEvents(opened ? 0 : attempt + 1), opened ? 500 : 2000);
  };
}

/** Call `fn` on each event while mounted. */
export function useEvents(fn: EventListener, deps: unknown[] = []): void {
  useEffect(() => {
    if (!eventsSocket) openEvents();
    eventListeners.add(fn);
    return () => {
      eventListeners.delete(fn);
    };
  }, deps);
}

/** The instance list, reloaded when an event says something changed (and every 10 s as a backstop). */
export function useInstances(): { list: Instance[] | undefined; error: string; reload: () => void } {
  const [list, setList] = useState<Instance[] | undefined>(undefined);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  const reload = () => setTick((t) => t + 1);
  useEffect(() => {
    let gone = false;
    get<Instance[]>('/instances').then(
      (l) => {
        if (gone) return;
        setList(l);
        setError('');
      },
      (e: Error) => !gone && setError(e.message),
    );
    return () => {
      gone = true;
    };
  }, [tick]);
  useEffect(() => {
    const t = setInterval(reload, 10_000);
    return () => clearInterval(t);
  }, []);
  let pending: ReturnType<typeof setTimeout> | undefined;
  useEvents((e) => {
    if (e.type !== 'container' && e.type !== 'vm' && e.type !== 'instance') return;
    // a burst of events (create, start, network connect) reloads once
    if (pending) clearTimeout(pending);
    pending = setTimeout(reload, 150);
  });
  return { list, error, reload };
}

/** Figures of one instance over time, newest last (at most `keep`). */
export type History = Map<string, InstanceMetrics[]>;

function framesOf(v: unknown): InstanceMetrics[] {
  if (Array.isArray(v)) return v as InstanceMetrics[];
  if (v && typeof v === 'object') {
    const o = v as { instances?: InstanceMetrics[]; stats?: InstanceMetrics[]; id?: string };
    if (Array.isArray(o.instances)) return o.instances;
    if (Array.isArray(o.stats)) return o.stats;
    if (typeof o.id === 'string') return [v as InstanceMetrics];
  }
  return [];
}

/**
 * Stats of every running instance from /stats/stream (one frame per interval), kept as a short history per
 * instance for sparklines. Without that stream: each running instance's /metrics every 3 s.
 */
export function useAllStats(ids: string[], keep = 30): History {
  const [hist, setHist] = useState<History>(new Map());
  const key = ids.join(',');
  useEffect(() => {
    const h: History = new Map();
    const add = (frames: InstanceMetrics[]) => {
      for (const f of frames) {
        const arr = h.get(f.id) ?? [];
        arr.push(f);
        if (arr.length > keep) arr.shift();
        h.set(f.id, arr);
      }
      setHist(new Map(h));
    };
    return follow<unknown>('/stats/stream', (v) => add(framesOf(v)), {
      everyMs: 3000,
      fetch: async () =>
        (
          await Promise.all(
            ids.slice(0, 30).map((id) => get<InstanceMetrics>(`/instances/${id}/metrics`).catch(() => undefined)),
          )
        ).filter((x): x is InstanceMetrics => !!x),
    });
  }, [key]);
  return hist;
}

/** Live stats of one instance (/instances/{id}/stats/stream, or /metrics every 2 s). */
export function useInstanceStats(id: string, keep = 120): InstanceMetrics[] {
  const [hist, setHist] = useState<InstanceMetrics[]>([]);
  useEffect(() => {
    const h: InstanceMetrics[] = [];
    return follow<unknown>(
      `/instances/${encodeURIComponent(id)}/stats/stream`,
      (v) => {
        for (const f of framesOf(v)) h.push(f);
        while (h.length > keep) h.shift();
        setHist([...h]);
      },
      { everyMs: 2000, fetch: () => get<InstanceMetrics>(`/instances/${encodeURIComponent(id)}/metrics`) },
    );
  }, [id]);
  return hist;
}
