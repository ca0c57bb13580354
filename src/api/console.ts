/**
 * The web console on the daemon's TCP listener: its static files (dist/console/, built by `npm run build`), the
 * one-time login (`GET /login?token=…` from `hull console url`), session cookies, and the checks that keep other
 * sites out (CSRF header and Origin on state-changing requests, Origin on WebSocket upgrades).
 *
 * Cookies: `hull_session` (HttpOnly: the page never sees it) names the session; `hull_csrf` (readable by the
 * page) is echoed in the `X-Hull-CSRF` header of every POST/PUT/PATCH/DELETE. Both are SameSite=Strict and Secure.
 * Static files and /login need no session; everything else does.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';
import { hullEnv } from '../common/env.js';
import {
  consumeLoginToken,
  createSession,
  DEFAULT_SESSION_TTL_MS,
  endSession,
  type Session,
  sessionOf,
} from '../engine/console.js';
import type { Engine } from '../engine/engine.js';
import { ApiError, noContent, sendJson } from './http.js';

export const SESSION_COOKIE = 'hull_session';
export const CSRF_COOKIE = 'hull_csrf';
export const CSRF_HEADER = 'x-hull-csrf';

/** The console's policy: its own scripts only (no inline script), connections to this origin only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  // xterm.js, uPlot and noVNC set styles from script
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.map', '.svg', '.txt', '.ico', '.wasm']);

/** dist/console/ beside hull's bundle (or the repository's, when running from source); $HULL_CONSOLE_DIR wins. */
export function consoleDir(): string {
  const env = hullEnv('HULL_CONSOLE_DIR');
  if (env) return resolve(env);
  const self = fileURLToPath(import.meta.url);
  return self.endsWith('.ts') ? join(dirname(self), '..', '..', 'dist', 'console') : join(dirname(self), 'console');
}

interface CachedFile {
  mtimeMs: number;
  size: number;
  type: string;
  etag: string;
  raw: Buffer;
  br?: Buffer;
  gzip?: Buffer;
}

/** Cookies of a request, by name. */
export function cookiesOf(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!out.has(k)) out.set(k, part.slice(i + 1).trim());
  }
  return out;
}

/** The origin a browser on this listener sends: https:// and the Host it asked for. */
const ownOrigin = (req: IncomingMessage): string | undefined =>
  req.headers.host ? `https://${req.headers.host.toLowerCase()}` : undefined;

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Which encoding to send: brotli, gzip or none, from Accept-Encoding. */
function encodingFor(req: IncomingMessage): 'br' | 'gzip' | undefined {
  const accepted = new Set<string>();
  for (const part of String(req.headers['accept-encoding'] ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name || params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p))) continue;
    accepted.add(name);
  }
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return undefined;
}

export interface ConsoleOptions {
  /** how long a session lasts (default 12 h) */
  sessionTtlMs?: number;
  log: (line: string) => void;
}

/** The console's part of the TCP listener. */
export class ConsoleServer {
  private readonly dir = consoleDir();
  private readonly files = new Map<string, CachedFile>();
  private readonly ttl: number;

  constructor(
    private readonly engine: Engine,
    private readonly opts: ConsoleOptions,
  ) {
    this.ttl = opts.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  }

  /**
   * Serve what needs no session: the login and the static files (with the SPA's fallback to index.html). False
   * when the request is for the API. `isApi`: whether the router has a route for the request.
   */
  serveOpen(req: IncomingMessage, res: ServerResponse, url: URL, isApi: () => boolean): boolean {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    const path = url.pathname;
    if (path === '/login') {
      this.login(req, res, url);
      return true;
    }
    if (path.startsWith('/hull/') || path === '/metrics') return false;
    const file = this.fileFor(path);
    if (file) {
      this.sendFile(req, res, file, path.startsWith('/assets/'));
      return true;
    }
    if (path.startsWith('/assets/')) {
      this.sendText(res, 404, `no such file: ${path}`);
      return true;
    }
    // the single-page app's own paths: a browser's navigation (it accepts HTML), or a path the API lacks
    const html = /\btext\/html\b/.test(String(req.headers.accept ?? ''));
    if (path === '/' || html || !isApi()) {
      const index = this.fileFor('/index.html');
      if (index) this.sendFile(req, res, index, false);
      else
        this.sendText(
          res,
          404,
          `the web console is not built (no ${join(this.dir, 'index.html')}): run "npm run build" in hull's checkout`,
        );
      return true;
    }
    return false;
  }

  /** The session a request's cookie names, if it is live. */
  sessionOf(req: IncomingMessage): Session | undefined {
    const v = cookiesOf(req).get(SESSION_COOKIE);
    return v ? sessionOf(this.engine, v) : undefined;
  }

  /**
   * Why a request authenticated by a session cookie is refused, if it is: a state-changing request needs the CSRF
   * header (equal to the CSRF cookie, which is the session's) and, when it sends an Origin, this listener's own.
   */
  csrfError(req: IncomingMessage, s: Session): ApiError | undefined {
    const method = req.method ?? 'GET';
    if (!STATE_CHANGING.has(method)) return undefined;
    const origin = req.headers.origin;
    if (origin !== undefined && origin.toLowerCase() !== ownOrigin(req))
      return new ApiError(403, `cross-origin request refused: Origin ${origin} is not this console's`, 'HULL_CSRF');
    const header = req.headers[CSRF_HEADER];
    const cookie = cookiesOf(req).get(CSRF_COOKIE);
    if (typeof header !== 'string' || !header || header !== cookie || !s.csrfMatches(header))
      return new ApiError(
        403,
        `missing or wrong ${CSRF_HEADER} header: send the ${CSRF_COOKIE} cookie's value in it`,
        'HULL_CSRF',
      );
    return undefined;
  }

  /** Why a WebSocket upgrade authenticated by a session cookie is refused: its Origin must be this listener's. */
  upgradeError(req: IncomingMessage): ApiError | undefined {
    const origin = req.headers.origin;
    if (origin === undefined || origin.toLowerCase() !== ownOrigin(req))
      return new ApiError(
        403,
        `cross-origin WebSocket refused: Origin ${origin ?? '(none)'} is not this console's`,
        'HULL_CSRF',
      );
    return undefined;
  }

  /**
   * `GET /hull/v1/session` and `POST /hull/v1/session/logout` for a request authenticated by a session; false for
   * other paths.
   */
  sessionRoute(req: IncomingMessage, res: ServerResponse, url: URL, s: Session | undefined): boolean {
    const path = url.pathname;
    if (path !== '/hull/v1/session' && path !== '/hull/v1/session/logout') return false;
    if (!s) throw new ApiError(404, 'no console session: this request was not authenticated by a session cookie');
    if (path === '/hull/v1/session') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, `method ${req.method} not allowed`);
      req.resume();
      sendJson(res, 200, { expiresAt: new Date(s.expiresAt).toISOString() });
      return true;
    }
    if (req.method !== 'POST') throw new ApiError(405, `method ${req.method} not allowed`);
    req.resume();
    endSession(this.engine, s);
    this.opts.log('console: a session logged out');
    res.setHeader('Set-Cookie', [
      `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`,
      `${CSRF_COOKIE}=; Secure; SameSite=Strict; Path=/; Max-Age=0`,
    ]);
    noContent(res);
    return true;
  }

  private login(req: IncomingMessage, res: ServerResponse, url: URL): void {
    req.resume();
    const token = url.searchParams.get('token') ?? '';
    if (!consumeLoginToken(this.engine, token)) {
      this.opts.log('GET /login: 401 an invalid, used or expired login token');
      const body = Buffer.from(
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>hull: login refused</title>' +
          '<h1>This login link is not valid</h1><p>It is unknown, was used already, or expired (links last 5 minutes).' +
          ' Run <code>hull console url</code> on the host for a new one.</p></html>\n',
      );
      res.writeHead(401, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': body.length,
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const s = createSession(this.engine, this.ttl);
    this.opts.log(`console: a login link was used; the session lasts until ${new Date(s.expiresAt).toISOString()}`);
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      Location: '/',
      'Cache-Control': 'no-store',
      'Set-Cookie': [
        `${SESSION_COOKIE}=${s.session}; HttpOnly; Secure; SameSite=Strict; Path=/`,
        `${CSRF_COOKIE}=${s.csrf}; Secure; SameSite=Strict; Path=/`,
      ],
      'Content-Length': 0,
    });
    res.end();
  }

  /** The cached file for a URL path, loaded (or reloaded after a rebuild); undefined when there is none. */
  private fileFor(urlPath: string): CachedFile | undefined {
    let rel: string;
    try {
      rel = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (rel.includes('\0') || rel.split('/').some((p) => p === '..')) return undefined;
    if (rel === '/') return undefined;
    const abs = resolve(this.dir, `.${rel}`);
    if (!abs.startsWith(this.dir + sep)) return undefined;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(abs);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const cached = this.files.get(abs);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached;
    const raw = readFileSync(abs);
    const ext = extname(abs).toLowerCase();
    const f: CachedFile = {
      mtimeMs: st.mtimeMs,
      size: st.size,
      type: TYPES[ext] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`,
      raw,
    };
    if (COMPRESSIBLE.has(ext) && raw.length > 256) {
      // precompressed beside it at build time, else made once here and kept
      f.br =
        readIfThere(`${abs}.br`) ?? brotliCompressSync(raw, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9 } });
      f.gzip = readIfThere(`${abs}.gz`) ?? gzipSync(raw, { level: 9 });
    }
    this.files.set(abs, f);
    return f;
  }

  private sendFile(req: IncomingMessage, res: ServerResponse, f: CachedFile, immutable: boolean): void {
    req.resume();
    const headers: Record<string, string | number> = {
      ...SECURITY_HEADERS,
      'Content-Type': f.type,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ETag: f.etag,
      Vary: 'Accept-Encoding',
    };
    if (req.headers['if-none-match'] === f.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const enc = f.br || f.gzip ? encodingFor(req) : undefined;
    const body = enc === 'br' ? f.br! : enc === 'gzip' ? f.gzip! : f.raw;
    if (enc) headers['Content-Encoding'] = enc;
    headers['Content-Length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private sendText(res: ServerResponse, status: number, text: string): void {
    res.req.resume();
    const body = Buffer.from(`${text}\n`);
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': body.length,
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}

function readIfThere(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
