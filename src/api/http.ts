/**
 * The daemon's HTTP plumbing on node:http: routes with path parameters, JSON bodies (size- and time-limited),
 * errors in docker's shape (`{"message": …}` with docker's status codes), and hijacked connections (docker's
 * `Upgrade: tcp` for attach and exec).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AuthenticationError,
  ConflictError,
  HullError,
  InvalidArgumentError,
  NotFoundError,
  StateError,
} from '../common/errors.js';
import type { Engine } from '../engine/engine.js';

/** An error with the HTTP status it answers with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** hull's error code for it (hull's API shape), when the status's generic code says too little */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The status code docker gives an error of this kind. */
export function statusOf(e: unknown): number {
  if (e instanceof ApiError) return e.status;
  if (e instanceof NotFoundError) return 404;
  if (e instanceof ConflictError || e instanceof StateError) return 409;
  if (e instanceof InvalidArgumentError) return 400;
  if (e instanceof AuthenticationError) return 401;
  return 500;
}

export function messageOf(e: unknown): string {
  if (e instanceof HullError || e instanceof ApiError || e instanceof Error) return e.message;
  return String(e);
}

/** The largest JSON body the API reads (docker's create bodies are a few KiB). */
export const MAX_BODY = 4 * 1024 * 1024;
/** How long a client may take to send a body. */
const BODY_TIMEOUT_MS = 30_000;

/** One request as a route handler sees it. */
export interface Call {
  engine: Engine;
  req: IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  /** the parsed JSON body ({} when there is none); malformed JSON is a 400 */
  body(): Promise<Record<string, unknown>>;
}

/** A normal request: write the answer on `res`. */
export type Handler = (c: Call, res: ServerResponse) => Promise<void>;

/** A hijacked request (attach, exec start): the raw connection after the 101 answer is the handler's. */
export interface Hijack {
  socket: Duplex;
  /** answer 101 UPGRADED with this content type; from then on `socket` carries the stream */
  upgrade(contentType: string): void;
}
export type HijackHandler = (c: Call, h: Hijack) => Promise<void>;

interface Route {
  method: string;
  parts: string[];
  handler?: Handler;
  hijack?: HijackHandler;
}

/** docker's API paths, with `{name}` parameters; a path may carry a `/vNN.NN` version prefix. */
export class Router {
  private readonly routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, parts: path.split('/').filter(Boolean), handler });
    return this;
  }

  /** a route that docker clients reach with `Upgrade: tcp` (attach, exec start) */
  hijack(method: string, path: string, handler: HijackHandler): this {
    this.routes.push({ method, parts: path.split('/').filter(Boolean), hijack: handler });
    return this;
  }

  /**
   * The route of a request, its parameters, or why there is none (404, 405). `hijacked`: the request asks for an
   * upgrade (attach, exec start). A `{name*}` part takes one or more path segments (image names have slashes).
   */
  match(
    method: string,
    rawPath: string,
    hijacked: boolean,
  ): { route: Route; params: Record<string, string> } | ApiError {
    let raw = rawPath.split('/').filter(Boolean);
    if (raw[0] && /^v\d+\.\d+$/.test(raw[0])) raw = raw.slice(1);
    let parts: string[];
    try {
      parts = raw.map((p) => decodeURIComponent(p));
    } catch {
      return new ApiError(400, `malformed path ${rawPath}`);
    }
    let pathMatched = false;
    for (const r of this.routes) {
      const params = matchParts(r.parts, parts);
      if (!params) continue;
      pathMatched = true;
      if (hijacked ? !r.hijack : !r.handler) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params };
    }
    return pathMatched
      ? new ApiError(405, `method ${method} not allowed on ${rawPath}`)
      : new ApiError(404, `page not found: ${method} ${rawPath}`);
  }
}

function matchParts(want: string[], got: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  const g = want.findIndex((w) => w.endsWith('*}'));
  if (g < 0 ? want.length !== got.length : got.length < want.length) return null;
  const after = g < 0 ? 0 : want.length - g - 1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (i === g) {
      params[w.slice(1, -2)] = got.slice(g, got.length - after).join('/');
      continue;
    }
    const v = g >= 0 && i > g ? got[got.length - (want.length - i)]! : got[i]!;
    if (w.startsWith('{')) params[w.slice(1, -1)] = v;
    else if (w !== v) return null;
  }
  return params;
}

/**
 * Read a request's body: at most MAX_BODY bytes, within BODY_TIMEOUT_MS. On a hijacked connection `prefix` is what
 * came with the headers, and reading stops (paused) at `length`, so that the stream after it stays unread.
 */
export function readBody(stream: NodeJS.ReadableStream, length: number | undefined, prefix?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = prefix?.length ? [prefix] : [];
    let size = prefix?.length ?? 0;
    if (length !== undefined && length > MAX_BODY)
      return reject(new ApiError(413, `request body too large: ${length} bytes (at most ${MAX_BODY})`));
    const done = (e?: Error) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      stream.pause();
      if (e) return reject(e);
      const all = Buffer.concat(chunks);
      if (length !== undefined && all.length > length) stream.unshift(all.subarray(length));
      resolve(length !== undefined ? all.subarray(0, length) : all);
    };
    const onData = (b: Buffer) => {
      chunks.push(b);
      size += b.length;
      if (size > MAX_BODY) done(new ApiError(413, `request body too large (at most ${MAX_BODY} bytes)`));
      else if (length !== undefined && size >= length) done();
    };
    const onEnd = (e?: unknown) => done(e instanceof Error ? e : undefined);
    const timer = setTimeout(() => done(new ApiError(408, 'request body not received in time')), BODY_TIMEOUT_MS);
    if (length !== undefined && size >= length) return done();
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onEnd);
    stream.resume();
  });
}

/** Parse a JSON object body; empty is {}. */
export function parseJsonBody(buf: Buffer): Record<string, unknown> {
  const text = buf.toString('utf8').trim();
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `malformed JSON body: ${(e as Error).message}`);
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, statusOf(e), { message: messageOf(e) });
}

export function noContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

/** A raw HTTP error answer on a connection that was to be hijacked. */
export function rawError(socket: Duplex, e: unknown): void {
  const status = statusOf(e);
  const body = JSON.stringify({ message: messageOf(e) }) + '\n';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
};

/** Query flags as docker sends them: 1/true/True are true. */
export function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v !== null && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** docker's `filters` query parameter: JSON `{"name": ["a"], …}` (or the old `{"name": {"a": true}}`). */
export function filters(q: URLSearchParams): Record<string, string[]> {
  const raw = q.get('filters');
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `invalid filters: ${raw}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(400, `invalid filters: ${raw}`);
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries(v)) {
    if (Array.isArray(val)) out[k] = val.map(String);
    else if (typeof val === 'object' && val !== null) out[k] = Object.keys(val);
    else throw new ApiError(400, `invalid filter ${k}`);
  }
  return out;
}
