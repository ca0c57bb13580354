/**
 * hull's WebSocket endpoints (ws): events, an operation's progress, exec, attach and a VM's serial console. The
 * daemon hands every `Upgrade: websocket` request here (after its authentication); anything else is answered with
 * hull's error shape before the upgrade.
 *
 * Terminal protocol (exec, attach, console): binary frames to the server are stdin; binary frames from it are
 * output, the first byte naming the stream (1 stdout, 2 stderr; with a TTY always 1; the console sends raw bytes,
 * no stream byte). Text frames are JSON control messages: to the server `{"type":"resize","rows":R,"cols":C}` and
 * `{"type":"close-stdin"}`; from it `{"type":"exit","exitCode":N}` (then close 1000) or `{"type":"error",…}`.
 *
 * Display (vnc): raw RFB both ways in binary frames, as noVNC's websock expects (subprotocol 'binary' is
 * accepted: ws answers with the first protocol a client offers); closed when either side ends.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Duplex, Writable } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { HullError } from '../../common/errors.js';
import type { StdioStreams } from '../../common/instance.js';
import type { Engine } from '../../engine/engine.js';
import { consoleInstance } from '../../engine/lifecycle/console.js';
import { connectDisplay, liveDisplay } from '../../engine/display.js';
import { execInstance } from '../../engine/lifecycle/exec.js';
import { waitInstance } from '../../engine/lifecycle/wait.js';
import { instanceLogs } from '../../engine/output.js';
import { ApiError, flag, messageOf } from '../http.js';
import type { Streams } from '../streams.js';
import { rawHullError } from './errors.js';
import { type HullApiState, instanceOf, PREFIX } from './routes.js';
import { eventFilterOf, eventMatches, eventView } from './shapes.js';
import { validatorOf } from './validate.js';
import { LiveHub, liveWsRoutes } from './live.js';

const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });

/** Whether a request asks for a WebSocket. */
export const wantsWebSocket = (req: IncomingMessage): boolean =>
  (req.headers.upgrade ?? '').toLowerCase() === 'websocket';

interface WsCall {
  engine: Engine;
  params: Record<string, string>;
  query: URLSearchParams;
  ws: WebSocket;
  /** aborted when the client leaves or the daemon stops */
  signal: AbortSignal;
}

type WsRoute = {
  parts: string[];
  /** runs before the upgrade: a thrown error is an HTTP error answer */
  check?: (c: Omit<WsCall, 'ws' | 'signal'>) => Promise<unknown>;
  run: (c: WsCall, checked: unknown) => Promise<void>;
};

const send = (ws: WebSocket, v: unknown) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(v));
};

/** A writable whose chunks go out as binary frames, prefixed with `stream` unless it is undefined. */
function frames(ws: WebSocket, stream: number | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      if (ws.readyState !== WebSocket.OPEN || chunk.length === 0) return cb();
      ws.send(stream === undefined ? chunk : Buffer.concat([Buffer.from([stream]), chunk]), { binary: true }, () =>
        cb(),
      );
    },
  });
}

/** A terminal over a WebSocket: stdin from binary frames, size from resize messages. */
function terminal(ws: WebSocket, q: URLSearchParams, withStdin: boolean) {
  const stdin = new PassThrough();
  let size = { rows: Number(q.get('rows')) || 24, cols: Number(q.get('cols')) || 80 };
  const listeners: (() => void)[] = [];
  const control = validatorOf('ExecControl');
  ws.on('message', (data: RawData, binary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (binary) {
      if (withStdin && !stdin.writableEnded) stdin.write(buf);
      return;
    }
    let m: unknown;
    try {
      m = JSON.parse(buf.toString('utf8'));
    } catch {
      m = undefined;
    }
    if (!control(m))
      return send(ws, { type: 'error', message: 'unknown control message: expected resize or close-stdin' });
    const msg = m as { type: string; rows?: number; cols?: number };
    if (msg.type === 'close-stdin') stdin.end();
    else if (msg.type === 'resize') {
      size = { rows: msg.rows!, cols: msg.cols! };
      for (const l of listeners) l();
    }
  });
  ws.on('close', () => stdin.end());
  return {
    stdin,
    size: () => size,
    onResize: (cb: () => void) => listeners.push(cb),
  };
}

/** Once what was written to these has gone out (their queues drained, in order). */
const flushed = (...ws: NodeJS.WritableStream[]) =>
  Promise.all(ws.map((w) => new Promise<void>((res) => w.write(Buffer.alloc(0), () => res()))));

const aborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('the client went away'))));

function routes(state: HullApiState): WsRoute[] {
  const r: WsRoute[] = [];
  const on = (path: string, run: WsRoute['run'], check?: WsRoute['check']) =>
    r.push({ parts: `${PREFIX}${path}`.split('/').filter(Boolean), run, ...(check ? { check } : {}) });

  on(
    '/events',
    async (c) => {
      const f = eventFilterOf(c.query);
      const sinceQ = c.query.get('since');
      const since = sinceQ ? Number(sinceQ) : undefined;
      let seq = since === undefined ? c.engine.store.lastEventSeq() : 0;
      send(c.ws, { subscribed: true, seq });
      // the recorded events since then, then new ones from the hub's one reader of the store (live.ts)
      if (since !== undefined)
        for (const e of c.engine.store.events(seq, { since })) {
          seq = e.seq;
          if (eventMatches(e, f)) send(c.ws, eventView(e));
        }
      await new Promise<void>((resolve) => {
        const stop = (state.live ??= new LiveHub(c.engine)).watchEvents(seq, (e) => {
          if (eventMatches(e, f)) send(c.ws, eventView(e));
        });
        const done = () => {
          stop();
          resolve();
        };
        if (c.signal.aborted) done();
        else c.signal.addEventListener('abort', done, { once: true });
      });
    },
    async (c) => {
      const s = c.query.get('since');
      if (s !== null && !/^\d+$/.test(s))
        throw new ApiError(400, `invalid since "${s}": expected milliseconds since the epoch`);
    },
  );

  on(
    '/operations/{id}',
    async (c) => {
      await new Promise<void>((resolve) => {
        const stop = state.operations.follow(c.params.id!, (op) => {
          send(c.ws, op);
          if (op.state !== 'running') resolve();
        });
        c.signal.addEventListener('abort', () => {
          stop();
          resolve();
        });
      });
    },
    async (c) => {
      if (!state.operations.get(c.params.id!)) throw new ApiError(404, `no operation ${c.params.id}`);
    },
  );

  on(
    '/instances/{id}/exec',
    async (c, checked) => {
      const rec = checked as Awaited<ReturnType<typeof instanceOf>>;
      const tty = flag(c.query, 'tty');
      const withStdin = c.query.get('stdin') === null || flag(c.query, 'stdin');
      const term = terminal(c.ws, c.query, withStdin);
      const stdio: StdioStreams = {
        stdin: withStdin ? term.stdin : null,
        stdout: frames(c.ws, 1),
        stderr: frames(c.ws, tty ? 1 : 2),
        size: term.size,
        onResize: term.onResize,
      };
      const user = c.query.get('user');
      const workdir = c.query.get('workdir');
      let code: number;
      try {
        code = await Promise.race([
          execInstance(
            c.engine,
            rec,
            {
              command: c.query.getAll('cmd'),
              env: c.query.getAll('env'),
              tty,
              stdin: withStdin,
              privileged: false,
              detach: false,
              ...(user ? { user } : {}),
              ...(workdir ? { workdir } : {}),
            },
            stdio,
          ),
          aborted(c.signal),
        ]);
      } catch (e) {
        if (c.signal.aborted) return;
        // a command that cannot run: its message on stderr and docker's exit code (126, 127), as docker exec does
        if (e instanceof HullError && (e.exitCode === 126 || e.exitCode === 127)) {
          stdio.stderr.write(`${e.message}\n`);
          code = e.exitCode;
        } else throw e;
      }
      await flushed(stdio.stdout, stdio.stderr);
      send(c.ws, { type: 'exit', exitCode: code });
    },
    async (c) => {
      const rec = await instanceOf(c.engine, c.params.id!);
      if (!c.query.getAll('cmd').length) throw new ApiError(400, 'exec needs the command: ?cmd=sh&cmd=-c&cmd=…');
      if (rec.state !== 'running') throw new ApiError(409, `cannot exec in instance ${rec.name}: it is ${rec.state}`);
      return rec;
    },
  );

  on(
    '/instances/{id}/attach',
    async (c, checked) => {
      const rec = checked as Awaited<ReturnType<typeof instanceOf>>;
      const tty = rec.config.tty;
      const out = frames(c.ws, 1);
      const err = frames(c.ws, tty ? 1 : 2);
      if (tty || rec.config.stdin) {
        const term = terminal(c.ws, c.query, rec.config.stdin);
        await Promise.race([
          c.engine.driver(rec.kind).attach(c.engine.context(rec), {
            stdin: rec.config.stdin ? term.stdin : null,
            stdout: out,
            stderr: err,
            size: term.size,
            onResize: term.onResize,
          }),
          aborted(c.signal),
        ]).catch((e: unknown) => {
          if (!c.signal.aborted) throw e;
        });
      } else {
        // no input: its output as the log records it, from now until it exits
        await instanceLogs(
          c.engine,
          rec,
          { follow: true, since: Date.now() },
          (l) => (l.stream === 'stderr' ? err : out).write(l.text),
          c.signal,
        );
      }
      if (c.signal.aborted) return;
      await flushed(out, err);
      // its output ended: the exit code once it is recorded
      send(c.ws, { type: 'exit', exitCode: await waitInstance(c.engine, rec, c.signal) });
    },
    async (c) => {
      const rec = await instanceOf(c.engine, c.params.id!);
      if (rec.state !== 'running') throw new ApiError(409, `cannot attach to instance ${rec.name}: it is ${rec.state}`);
      return rec;
    },
  );

  on(
    '/instances/{id}/console',
    async (c, checked) => {
      const rec = checked as Awaited<ReturnType<typeof instanceOf>>;
      const term = terminal(c.ws, c.query, true);
      const how = await Promise.race([
        consoleInstance(c.engine, rec.id, () => ({
          stdio: {
            stdin: term.stdin,
            stdout: frames(c.ws, undefined),
            stderr: frames(c.ws, undefined),
            size: term.size,
            onResize: term.onResize,
          },
          restore: () => undefined,
        })),
        aborted(c.signal),
      ]).catch((e: unknown) => {
        if (!c.signal.aborted) throw e;
        return 'detached' as const;
      });
      send(c.ws, { type: 'exit', reason: how });
    },
    async (c) => {
      const rec = await instanceOf(c.engine, c.params.id!);
      if (!c.engine.driver(rec.kind).capabilities.console)
        throw new ApiError(400, `${rec.name} is a ${rec.kind}, which has no serial console: use exec or attach`);
      return rec;
    },
  );
  on(
    '/instances/{id}/vnc',
    async (c, checked) => {
      // raw RFB both ways in binary frames (noVNC's websock); the VNC server speaks first
      const vnc = await connectDisplay(c.engine, checked as Awaited<ReturnType<typeof instanceOf>>);
      await new Promise<void>((resolve) => {
        const end = () => {
          vnc.destroy();
          resolve();
        };
        vnc.on('data', (b: Buffer) => {
          if (c.ws.readyState !== WebSocket.OPEN) return;
          // backpressure: stop reading the server while the client's queue is long
          c.ws.send(b, { binary: true }, () => {
            if (vnc.isPaused() && c.ws.bufferedAmount < 1024 * 1024) vnc.resume();
          });
          if (c.ws.bufferedAmount >= 4 * 1024 * 1024) vnc.pause();
        });
        c.ws.on('message', (data: RawData) => {
          vnc.write(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
        });
        vnc.on('close', end).on('error', end);
        c.signal.addEventListener('abort', end);
      });
    },
    async (c) => {
      const rec = await instanceOf(c.engine, c.params.id!);
      const { rec: cur } = await liveDisplay(c.engine, rec);
      return cur;
    },
  );

  // live stats, host metrics and logs for the web console (live.ts)
  for (const l of liveWsRoutes((engine) => (state.live ??= new LiveHub(engine)), instanceOf))
    on(l.path, l.run, l.check);
  return r;
}

function matchParts(want: string[], got: string[]): Record<string, string> | null {
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w.startsWith('{')) params[w.slice(1, -1)] = got[i]!;
    else if (w !== got[i]) return null;
  }
  return params;
}

let table: WsRoute[] | undefined;

/**
 * Serve one `Upgrade: websocket` request: match its path, run the route's checks (errors answered as HTTP, in
 * hull's shape), upgrade, then run it until it ends, the client leaves or the daemon stops.
 */
export async function handleWebSocket(
  engine: Engine,
  state: HullApiState,
  streams: Streams,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  log: (line: string) => void,
): Promise<void> {
  table ??= routes(state);
  const url = new URL(req.url ?? '/', 'http://hull');
  let parts: string[];
  try {
    parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return rawHullError(socket, new ApiError(400, `malformed path ${url.pathname}`));
  }
  let route: WsRoute | undefined;
  let params: Record<string, string> = {};
  for (const r of table) {
    const p = matchParts(r.parts, parts);
    if (p) {
      route = r;
      params = p;
      break;
    }
  }
  if (!route || req.method !== 'GET')
    return rawHullError(socket, new ApiError(404, `no WebSocket endpoint ${req.method} ${url.pathname}`));
  let checked: unknown;
  try {
    checked = await route.check?.({ engine, params, query: url.searchParams });
  } catch (e) {
    log(`WS ${url.pathname}: ${messageOf(e)}`);
    return rawHullError(socket, e);
  }
  const ws = await new Promise<WebSocket>((resolve) => wss.handleUpgrade(req, socket, head, resolve));
  const ac = streams.trackSocket(socket);
  ws.on('close', () => ac.abort());
  ws.on('error', () => ac.abort());
  try {
    await route.run({ engine, params, query: url.searchParams, ws, signal: ac.signal }, checked);
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  } catch (e) {
    log(`WS ${url.pathname}: ${messageOf(e)}`);
    send(ws, { type: 'error', message: messageOf(e) });
    if (ws.readyState === WebSocket.OPEN) ws.close(1011);
  } finally {
    streams.untrackSocket(socket);
  }
}
