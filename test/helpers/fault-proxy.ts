/**
 * A fault-injecting HTTP proxy for registry tests: it stands in front of a real registry (docker-registry) on
 * 127.0.0.1 and, per request, as `fault` decides, forwards it untouched, or stalls (before the answer's head, or
 * after N bytes of its body, keeping the connection open), cuts the connection after N bytes, refuses range
 * requests (drops `Range` going up and `Accept-Ranges` coming down), answers a 5xx itself, or holds the request
 * until a promise resolves. Every request is logged with its Range header, status and the body bytes sent.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

export interface ProxyFault {
  /** never send the answer's head (a registry that accepted the connection and went silent) */
  stallHead?: boolean;
  /** send this many bytes of the body, then nothing more; the connection stays open */
  stallAfter?: number;
  /** send this many bytes of the body, then cut the connection */
  cutAfter?: number;
  /** a registry without range requests: `Range` is not passed up, `Accept-Ranges` not passed down */
  refuseRange?: boolean;
  /** answer this status (5xx) instead of forwarding */
  status?: number;
  /** forward only once this resolves */
  hold?: Promise<unknown>;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** the Range header the client sent */
  range?: string;
  /** the status sent back (undefined while there is none) */
  status?: number;
  /** body bytes sent back so far */
  bytes: number;
  fault?: ProxyFault;
}

export class FaultProxy {
  host = '';
  readonly requests: ProxiedRequest[] = [];
  /** decides each request's fault (default: none); change it between steps of a test */
  fault: (req: { method: string; path: string; headers: IncomingHttpHeaders }) => ProxyFault | undefined = () =>
    undefined;
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  private readonly waiters: { pred: () => boolean; resolve: () => void }[] = [];
  private readonly agent = new Agent({ keepAlive: false });
  private readonly upstream: { hostname: string; port: number };

  /** @param target the registry, `127.0.0.1:PORT` */
  constructor(target: string) {
    const [hostname, port] = target.split(':');
    this.upstream = { hostname: hostname!, port: Number(port) };
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.host = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
    this.agent.destroy();
  }

  /** Cut every open connection (stalled ones included). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Resolves once `pred` holds; checked at every request and every chunk sent. */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  /** The GETs of one blob (by digest) seen so far. */
  blobGets(digest: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${digest}`));
  }

  private notify(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.pred()) {
        this.waiters[i]!.resolve();
        this.waiters.splice(i, 1);
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const fault = this.fault({ method, path, headers: req.headers });
    const entry: ProxiedRequest = {
      method,
      path,
      bytes: 0,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(fault ? { fault } : {}),
    };
    this.requests.push(entry);
    this.notify();
    if (fault?.hold) await fault.hold;
    if (fault?.status) {
      entry.status = fault.status;
      req.resume();
      res.writeHead(fault.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected by the fault proxy' }] }));
      this.notify();
      return;
    }
    if (fault?.stallHead) {
      req.resume();
      return; // the socket stays open until the client gives up or the proxy stops
    }
    const headers = { ...req.headers };
    if (fault?.refuseRange) delete headers.range;
    const up = httpRequest({ ...this.upstream, method, path, headers, agent: this.agent }, (ures) => {
      const h = { ...ures.headers };
      if (fault?.refuseRange) delete h['accept-ranges'];
      entry.status = ures.statusCode ?? 0;
      res.writeHead(entry.status, h);
      const limit = fault?.stallAfter ?? fault?.cutAfter;
      let over = false;
      ures.on('data', (chunk: Buffer) => {
        if (over) return;
        if (limit !== undefined && entry.bytes + chunk.length >= limit) {
          over = true;
          const part = chunk.subarray(0, limit - entry.bytes);
          entry.bytes += part.length;
          ures.destroy();
          const after = () => {
            if (fault?.cutAfter !== undefined) res.socket?.destroy();
            this.notify();
          };
          if (part.length) res.write(part, after);
          else after();
          return;
        }
        entry.bytes += chunk.length;
        res.write(chunk, () => this.notify());
      });
      ures.on('end', () => {
        if (!over) res.end();
        this.notify();
      });
      ures.on('error', () => {
        if (!over) res.destroy();
      });
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}
