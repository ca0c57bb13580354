/**
 * The console's only way to the daemon: hull's own API under /hull/v1 on the same origin, with the session cookie
 * the login link set. Every state-changing request carries the CSRF token (the hull_csrf cookie) in X-Hull-CSRF.
 * A 401 anywhere means the session ended: the app shows how to get a new link.
 */

export const API = '/hull/v1';

export interface Instance {
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
  /** whether a graphical display is attached (the display work adds it; absent means none) */
  display?: boolean | string | { type?: string; enabled?: boolean } | null;
}

export interface InstanceMetrics {
  id: string;
  name: string;
  kind: string;
  state: string;
  live: boolean;
  time: string;
  cpuSeconds: number;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  pids: number;
  blockReadBytes: number;
  blockWriteBytes: number;
  networkReceiveBytes: number;
  networkTransmitBytes: number;
}

export interface HostMetrics {
  time: string;
  cpu: {
    count: number;
    load: [number, number, number];
    userSeconds: number;
    systemSeconds: number;
    idleSeconds: number;
    totalSeconds: number;
  };
  memory: {
    totalBytes: number;
    availableBytes: number;
    usedBytes: number;
    swapTotalBytes: number;
    swapFreeBytes: number;
  };
  disk: { path: string; totalBytes: number; freeBytes: number; availableBytes: number; usedBytes: number };
  network: { name: string; rxBytes: number; txBytes: number; rxPackets: number; txPackets: number }[];
}

export interface Image {
  id: string;
  names: string[];
  digest: string;
  created: string;
  size: number;
  architecture: string;
  os: string;
}

export interface ImageDetail extends Image {
  config: { env: string[]; cmd: string[]; entrypoint: string[]; workdir: string; user: string };
  layers: { digest: string; diffId: string; size: number }[];
}

export interface Network {
  id: string;
  name: string;
  driver: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  created: string;
  instances: string[];
}

export interface Volume {
  name: string;
  driver: string;
  mountpoint: string;
  created: string | number;
  labels: Record<string, string>;
  anonymous: boolean;
  pool: string;
  type: 'filesystem' | 'block';
  /** bytes; null without a quota */
  size: number | null;
  usedBy: string[];
}

export interface StoragePool {
  name: string;
  driver: 'dir' | 'btrfs' | 'xfs';
  path: string;
  source: string | null;
  /** whether its volumes can have a size */
  quotas: boolean;
  size: number;
  used: number;
  free: number;
  volumes: string[];
  created: string | null;
}

export interface HullEvent {
  seq: number;
  time: string;
  type: string;
  action: string;
  id: string;
  name: string;
  attributes: Record<string, string>;
}

export interface Operation {
  id: string;
  kind: string;
  target: string;
  state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: {
    current: number;
    total: number;
    layers: { digest: string; state: string; current: number; total: number }[];
  };
  error: string | null;
  result: Record<string, unknown> | null;
}

/** An answer other than 2xx, with the daemon's one-line message. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const sessionListeners = new Set<Listener>();
let ended = false;

/** Whether a request was refused for want of a session (401); the app then shows the "run hull console url" screen. */
export const sessionEnded = (): boolean => ended;
export function onSessionEnd(l: Listener): () => void {
  sessionListeners.add(l);
  return () => sessionListeners.delete(l);
}
export function endSession(): void {
  if (ended) return;
  ended = true;
  for (const l of sessionListeners) l();
}

/** The CSRF token the login set (a cookie JavaScript may read; the session cookie itself is HttpOnly). */
export function csrfToken(): string {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'hull_csrf') return decodeURIComponent(v.join('='));
  }
  return '';
}

/** A request to /hull/v1; resolves with the parsed JSON (undefined for 204), rejects with ApiFailure. */
export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Hull-CSRF'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const init: RequestInit = {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  };
  let res: Response;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(API + path, init);
      break;
    } catch (e) {
      // a dropped connection (the browser aborts requests when the host's interfaces change, as they do while
      // instances start): a read is tried again; a change is not (it may have been done), the error says so
      if ((method !== 'GET' && method !== 'HEAD') || attempt >= 2) {
        throw new ApiFailure(0, `${method} ${path}: the connection to the daemon failed (${(e as Error).message})`);
      }
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
  if (res.status === 401) {
    endSession();
    throw new ApiFailure(401, 'the session ended: run `hull console url` for a new link');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const m = (data as { message?: string } | undefined)?.message;
    throw new ApiFailure(res.status, m ?? `${method} ${path} failed: ${res.status} ${res.statusText}`);
  }
  return data as T;
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body);

/** A name or reference as one path segment (image names hold slashes). */
export const seg = (s: string) => encodeURIComponent(s);

/** A WebSocket to /hull/v1 on this origin (the browser sends the session cookie with the upgrade). */
export function socket(path: string): WebSocket {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${API}${path}`);
  ws.binaryType = 'arraybuffer';
  return ws;
}

/**
 * Follow a JSON stream (a WebSocket sending one JSON document per frame); `poll` is the fallback when the socket
 * cannot open (a daemon without that stream): it is called every `everyMs`. Returns a stop function.
 */
export function follow<T>(
  path: string,
  onFrame: (v: T) => void,
  poll?: { fetch: () => Promise<T>; everyMs: number },
): () => void {
  let stopped = false;
  let ws: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let gotFrame = false;
  const startPolling = () => {
    if (!poll || stopped) return;
    const tick = async () => {
      if (stopped) return;
      try {
        onFrame(await poll.fetch());
      } catch {
        /* shown by the next success; a 401 ends the session */
      }
      if (!stopped) timer = setTimeout(tick, poll.everyMs);
    };
    void tick();
  };
  const open = (attempt: number) => {
    ws = socket(path);
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      gotFrame = true;
      try {
        onFrame(JSON.parse(m.data) as T);
      } catch {
        /* not JSON: ignore */
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      // never opened or refused: fall back to polling; a stream that worked is reopened
      if (!gotFrame) startPolling();
      else if (attempt < 20) timer = setTimeout(() => open(attempt + 1), 1000);
    };
  };
  open(0);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    ws?.close();
  };
}
