/**
 * `hull daemon`: hull's engine over HTTP, on a unix socket (and, with authentication, on TCP over HTTPS), speaking
 * the Docker Engine API (v1.41) so that docker's own clients drive hull, and hull's own API (/hull/v1) with the web
 * console (api/console.ts) for browsers. One process, one open engine; instances
 * are supervised by conmon and the VM monitor, not by the daemon, so stopping it leaves them running and a new
 * daemon serves them again.
 *
 * The socket is root-equivalent (whoever can write to it can run a privileged container): mode 0660, group
 * `hull` when that group exists (scripts/setup.sh makes it), else 0600.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import { hostPaths } from '../common/paths.js';
import type { Engine } from '../engine/engine.js';
import { forgetListen, parseListen, recordListen, selfSignedCertificate, type Session } from '../engine/console.js';
import { ConsoleServer } from './console.js';
import {
  ApiError,
  type Call,
  messageOf,
  parseJsonBody,
  rawError,
  readBody,
  Router,
  sendError,
  statusOf,
} from './http.js';
import { Streams } from './streams.js';
import { PING_HEADERS, systemRoutes } from './docker/system.js';
import { containerRoutes } from './docker/containers.js';
import { execRoutes } from './docker/exec.js';
import { imageRoutes } from './docker/images.js';
import { networkRoutes } from './docker/networks.js';
import { extraRoutes } from './docker/extra.js';
import { hullRoutes, type HullApiState } from './hull/routes.js';
import { Operations } from './hull/operations.js';
import { LiveHub } from './hull/live.js';
import { isHullPath, rawHullError, sendHullError } from './hull/errors.js';
import { handleWebSocket, wantsWebSocket } from './hull/ws.js';
import { archiveRoutes } from './docker/archive.js';
import { buildRoutes } from './docker/build.js';
import { volumeRoutes } from './docker/volumes.js';
import { Supervisor } from '../engine/supervisor.js';

export interface DaemonOptions {
  socket: string;
  /**
   * HOST:PORT of a TCP listener, over HTTPS: with `tls.ca`, clients need certificates signed by it; without,
   * requests authenticate with a console session cookie or the bearer token of `tokenFile`
   */
  listen?: string;
  /** the server's certificate and key (default: a self-signed pair made once under <root>/daemon/tls/), the CA of client certificates */
  tls?: { cert?: string; key?: string; ca?: string };
  /** a file whose first line is the bearer token TCP clients may send */
  tokenFile?: string;
  /** how long a console session lasts (default 12 h) */
  sessionTtlMs?: number;
  /** hull's version, for /version and /info */
  version: string;
  /** where the daemon's log lines go (default stderr) */
  log?: (line: string) => void;
  /** called once the listeners accept connections */
  onReady?: () => void;
}

const log0 = (line: string) => process.stderr.write(`hull daemon: ${line}\n`);

/** The gid of group `hull`, or undefined when the host has none. */
function hullGid(): number | undefined {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , gid] = line.split(':');
      if (name === 'hull' && gid) return Number(gid);
    }
  } catch {
    // no /etc/group: no group
  }
  return undefined;
}

/** Whether something answers on a unix socket. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * One daemon per socket: the pid file is made exclusively; one left by a daemon that is gone (killed with -9)
 * is replaced, with its stale socket.
 */
async function claim(socket: string): Promise<string> {
  const pidFile = hostPaths.daemonPidFile(socket);
  mkdirSync(dirname(socket), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(pidFile, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw e;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      let alive = false;
      try {
        if (pid > 0) process.kill(pid, 0);
        alive = pid > 0;
      } catch {
        alive = false;
      }
      if (alive && (await answers(socket)))
        throw new ConflictError(
          `another hull daemon (pid ${pid}) serves ${socket}; stop it first or pick another --socket`,
        );
      rmSync(pidFile, { force: true });
    }
  }
  if (await answers(socket)) {
    rmSync(pidFile, { force: true });
    throw new ConflictError(`something already serves ${socket}; stop it first or pick another --socket`);
  }
  rmSync(socket, { force: true });
  return pidFile;
}

/** Every docker route, on one router. */
export function dockerRouter(version: string, streams: Streams): Router {
  const r = new Router();
  systemRoutes(r, version);
  containerRoutes(r, streams);
  execRoutes(r, streams);
  imageRoutes(r, streams);
  networkRoutes(r);
  extraRoutes(r, streams);
  archiveRoutes(r);
  buildRoutes(r, streams);
  volumeRoutes(r);
  return r;
}

/** Run the daemon until SIGTERM or SIGINT; resolves once it has stopped. */
export async function runDaemon(engine: Engine, opts: DaemonOptions): Promise<void> {
  const log = opts.log ?? log0;
  let token: Buffer | undefined;
  let tcp: { host: string; port: number } | undefined;
  if (opts.listen !== undefined) tcp = parseListen(opts.listen);
  if ((opts.tls?.cert === undefined) !== (opts.tls?.key === undefined))
    throw new InvalidArgumentError(
      '--tls-cert and --tls-key go together: give both, or neither for a self-signed pair',
    );
  /** client certificates authenticate TCP clients; without them, console sessions (and the bearer token) do */
  const clientCerts = opts.tls?.ca !== undefined;
  if (opts.tokenFile) {
    const t = readFileSync(opts.tokenFile, 'utf8').split('\n')[0]!.trim();
    if (t.length < 16)
      throw new InvalidArgumentError(`the token in ${opts.tokenFile} is too short: use 16 characters or more`);
    token = Buffer.from(t);
  }
  const streams = new Streams();
  const router = dockerRouter(opts.version, streams);
  // hull's own API (/hull/v1, /metrics) on the same router; its errors take hull's shape
  const hull: HullApiState = {
    operations: new Operations(engine.store, log),
    cpu: new Map(),
    live: new LiveHub(engine),
  };
  hullRoutes(router, hull);
  const inflight = new Set<Promise<void>>();
  const web = tcp && !clientCerts ? new ConsoleServer(engine, { sessionTtlMs: opts.sessionTtlMs, log }) : undefined;

  /**
   * Who a request is: on the socket, anyone who may write to it; on TCP, a client with a certificate (the TLS
   * handshake checked it), the bearer token's holder, or a console session. Undefined: unauthenticated.
   */
  const authenticate = (
    req: IncomingMessage,
    remote: boolean,
  ): { via: 'socket' | 'certificate' | 'bearer' } | { via: 'session'; session: Session } | undefined => {
    if (!remote) return { via: 'socket' };
    const h = req.headers.authorization;
    if (h !== undefined && token) {
      const got = Buffer.from(h.startsWith('Bearer ') ? h.slice(7).trim() : '');
      return got.length === token.length && timingSafeEqual(got, token) ? { via: 'bearer' } : undefined;
    }
    const session = web?.sessionOf(req);
    if (session) return { via: 'session', session };
    if (clientCerts && !token) return { via: 'certificate' };
    return undefined;
  };
  const unauthorized = () =>
    new ApiError(
      401,
      web
        ? 'unauthorized: log in through the link of "hull console url", or send the daemon token as Authorization: Bearer'
        : 'unauthorized: send the daemon token as Authorization: Bearer',
    );

  const callOf = (
    req: IncomingMessage,
    params: Record<string, string>,
    query: URLSearchParams,
    head?: Buffer,
  ): Call => {
    let body: Promise<Record<string, unknown>> | undefined;
    return {
      engine,
      req,
      params,
      query,
      body: () => {
        const len = req.headers['content-length'];
        body ??= readBody(
          head ? (req.socket as Duplex) : req,
          len === undefined ? (head ? 0 : undefined) : Number(len),
          head,
        ).then(parseJsonBody);
        return body;
      },
    };
  };

  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const onRequest = (remote: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hull');
    const fail = (e: unknown) => {
      log(`${req.method} ${url.pathname}: ${statusOf(e)} ${messageOf(e)}`);
      (isHullPath(url.pathname) ? sendHullError : sendError)(res, e);
    };
    // the console's static files and its login need no session
    if (remote && web) {
      try {
        if (
          web.serveOpen(
            req,
            res,
            url,
            () => !(router.match(req.method ?? 'GET', url.pathname, false) instanceof ApiError),
          )
        )
          return;
      } catch (e) {
        req.resume();
        return fail(e);
      }
    }
    const who = authenticate(req, remote);
    if (!who) {
      req.resume();
      return fail(unauthorized());
    }
    if (who.via === 'session') {
      const refused = web!.csrfError(req, who.session);
      if (refused) {
        req.resume();
        return fail(refused);
      }
    }
    try {
      if (web?.sessionRoute(req, res, url, who.via === 'session' ? who.session : undefined)) return;
    } catch (e) {
      req.resume();
      return fail(e);
    }
    const m = router.match(req.method ?? 'GET', url.pathname, false);
    if (m instanceof ApiError) {
      // drain what the client sent, so that the answer is read
      req.resume();
      return fail(m);
    }
    if (url.pathname.endsWith('/_ping')) res.setHeaders?.(new Map(Object.entries(PING_HEADERS)));
    track(
      m.route.handler!(callOf(req, m.params, url.searchParams), res).catch((e: unknown) => {
        if (res.headersSent) log(`${req.method} ${url.pathname}: cut short: ${messageOf(e)}`);
        else {
          req.resume();
          fail(e);
        }
      }),
    );
  };

  const onUpgrade = (remote: boolean) => (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://hull');
    socket.on('error', () => undefined);
    const fail = (e: unknown) => {
      log(`${req.method} ${url.pathname}: ${statusOf(e)} ${messageOf(e)}`);
      (isHullPath(url.pathname) ? rawHullError : rawError)(socket, e);
    };
    const who = authenticate(req, remote);
    if (!who) return fail(unauthorized());
    // a browser's WebSocket carries its page's Origin: only the console's own may use its session
    if (who.via === 'session') {
      const refused = web!.upgradeError(req);
      if (refused) return fail(refused);
    }
    // hull's WebSocket endpoints (events, operations, exec, attach, console)
    if (wantsWebSocket(req)) return track(handleWebSocket(engine, hull, streams, req, socket, head, log));
    const m = router.match(req.method ?? 'GET', url.pathname, true);
    if (m instanceof ApiError) return fail(m);
    let upgraded = false;
    track(
      m.route.hijack!(callOf(req, m.params, url.searchParams, head), {
        socket,
        upgrade(contentType) {
          upgraded = true;
          socket.write(
            `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
          );
        },
      }).catch((e: unknown) => {
        if (upgraded) {
          log(`${req.method} ${url.pathname}: cut short: ${messageOf(e)}`);
          socket.destroy();
        } else fail(e);
      }),
    );
  };

  const servers: Server[] = [];
  const unix = createHttpServer({ maxHeaderSize: 64 * 1024 }, onRequest(false));
  unix.on('upgrade', onUpgrade(false));
  unix.on('clientError', (_e, s) => s.destroy());
  servers.push(unix);

  const pidFile = await claim(opts.socket);
  // while the daemon runs, networks keep their bridges and DNS servers when their last instance leaves (as
  // dockerd keeps docker0); stopping lets go, and what no instance uses is retired
  let hold: { release: () => Promise<void> } | undefined;
  let listened: string | undefined;
  // restart policies and healthchecks: the daemon's while it runs (engine/supervisor.ts)
  const supervisor = new Supervisor(engine, log);
  try {
    supervisor.start();
    hold = await engine.networks.hold();
    await new Promise<void>((resolve, reject) => {
      unix.once('error', reject);
      unix.listen(opts.socket, () => resolve());
    });
    const gid = hullGid();
    if (gid !== undefined) {
      chownSync(opts.socket, 0, gid);
      chmodSync(opts.socket, 0o660);
    } else {
      chmodSync(opts.socket, 0o600);
      log(`no group "hull" on this host: ${opts.socket} is root's only (0600); scripts/setup.sh makes the group`);
    }
    if (tcp) {
      const handler = onRequest(true);
      const pair =
        opts.tls?.cert !== undefined && opts.tls.key !== undefined
          ? { cert: opts.tls.cert, key: opts.tls.key }
          : await selfSignedCertificate(engine.root, tcp.host);
      const server = createHttpsServer(
        {
          cert: readFileSync(pair.cert),
          key: readFileSync(pair.key),
          ...(clientCerts ? { ca: readFileSync(opts.tls!.ca!), requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      );
      server.on('upgrade', onUpgrade(true));
      server.on('clientError', (_e, s) => s.destroy());
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(tcp.port, tcp.host, () => resolve());
      });
      const a = server.address();
      const bound =
        typeof a === 'object' && a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : opts.listen!;
      if (web) {
        recordListen(engine.root, bound);
        listened = bound;
      }
      log(
        `listening on ${bound} (HTTPS; ${clientCerts ? 'client certificates' : `console sessions${token ? ' or bearer token' : ''}`})`,
      );
    }
    log(`serving the Docker Engine API and hull's API (/hull/v1) on unix://${opts.socket} (pid ${process.pid})`);
    opts.onReady?.();

    // until SIGTERM or SIGINT
    const sig = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    log(`${sig}: stopping (instances keep running)`);
    for (const s of servers) {
      s.close();
      s.closeIdleConnections();
    }
    // streams (followed logs, attach, exec, waits) end now; plain requests and builds finish, for at most 10 s
    streams.cutAll();
    hull.operations.cancelAll();
    hull.live?.close();
    await Promise.race([
      Promise.allSettled([...inflight, hull.operations.settled()]),
      new Promise((r) => setTimeout(r, 10_000).unref()),
    ]);
    for (const s of servers) s.closeAllConnections();
  } finally {
    if (listened) forgetListen(engine.root, listened);
    rmSync(opts.socket, { force: true });
    await supervisor.stop().catch((e: unknown) => log(`handing supervision back: ${messageOf(e)}`));
    await hold?.release().catch((e: unknown) => log(`letting go of idle networks: ${messageOf(e)}`));
    rmSync(pidFile, { force: true });
  }
}
