/** docker's `/containers/…` endpoints over hull's lifecycle verbs. */
import type { ServerResponse } from 'node:http';
import { NotFoundError } from '../../common/errors.js';
import { parseSignal } from '../../common/parse.js';
import type { StdioStreams } from '../../common/instance.js';
import type { Engine } from '../../engine/engine.js';
import type { InstanceRecord } from '../../engine/store.js';
import { createInstance } from '../../engine/lifecycle/create.js';
import { startInstance } from '../../engine/lifecycle/start.js';
import { stopInstance } from '../../engine/lifecycle/stop.js';
import { killInstance } from '../../engine/lifecycle/kill.js';
import { removeInstance } from '../../engine/lifecycle/remove.js';
import { restartInstance } from '../../engine/lifecycle/restart.js';
import { pauseInstance, unpauseInstance } from '../../engine/lifecycle/pause.js';
import { renameInstance } from '../../engine/lifecycle/rename.js';
import { handleExit, refresh, refreshForView } from '../../engine/lifecycle/exit.js';
import { instanceLogs } from '../../engine/output.js';
import { describeInstance } from '../../engine/describe.js';
import { publishedPorts } from '../../engine/networking.js';
import { ApiError, type Call, flag, type Hijack, noContent, type Router, sendJson } from '../http.js';
import { listInstances, parseFilterJson } from '../../engine/list.js';
import { instanceSizes } from '../../engine/disk-usage.js';
import { createRequestOf } from './create.js';
import { MULTIPLEXED_STREAM, RAW_STREAM, sink, streamWritable } from './streams.js';
import { Terminal } from './terminal.js';
import type { Streams } from '../streams.js';

/** An instance by name, id or id prefix; docker's 404 otherwise. */
export function lookupContainer(engine: Engine, ref: string): InstanceRecord {
  try {
    return engine.store.lookup(ref);
  } catch (e) {
    if (e instanceof NotFoundError) throw new ApiError(404, `No such container: ${ref}`);
    throw e;
  }
}

const live = (r: InstanceRecord) => r.state === 'running' || r.state === 'paused';

/** docker's human durations ("5 seconds", "About a minute", "3 hours"). */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  return `${Math.round(h / 24 / 7)} weeks`;
}

/** docker's ps suffix: ` (health: starting)`, ` (healthy)`, ` (unhealthy)`; empty without a healthcheck. */
function healthText(r: InstanceRecord): string {
  if (!r.config.healthcheck || !r.health) return '';
  return r.health.status === 'starting' ? ' (health: starting)' : ` (${r.health.status})`;
}

function statusText(r: InstanceRecord): string {
  const now = Date.now();
  switch (r.state) {
    case 'running':
      return `Up ${humanDuration(now - (r.startedAt ?? r.createdAt))}${healthText(r)}`;
    case 'paused':
      return `Up ${humanDuration(now - (r.startedAt ?? r.createdAt))} (Paused)`;
    case 'exited':
      return `Exited (${r.exitCode ?? 0}) ${humanDuration(now - (r.finishedAt ?? r.createdAt))} ago`;
    case 'created':
      return 'Created';
    case 'removing':
      return 'Removal In Progress';
  }
}

/** One entry of `GET /containers/json`. */
export function containerListEntry(r: InstanceRecord, engine?: Engine): Record<string, unknown> {
  const c = r.config;
  // docker's ps column: the published ports of a live instance (host ports as resolved at start)
  const ports = engine
    ? publishedPorts(engine, r).map((p) => ({
        IP: p.hostIp || '0.0.0.0',
        PrivatePort: p.containerPort,
        PublicPort: p.hostPort,
        Type: p.protocol,
      }))
    : [];
  return {
    Id: r.id,
    Names: [`/${r.name}`],
    Image: r.image,
    ImageID: r.imageId,
    Command: c.command.join(' '),
    Created: Math.floor(r.createdAt / 1000),
    Ports: ports,
    Labels: c.labels ?? {},
    State: r.state,
    Status: statusText(r),
    HostConfig: { NetworkMode: c.network === 'bridge' ? 'default' : c.network },
    NetworkSettings: { Networks: Object.fromEntries((c.networks ?? []).map((n) => [n.name, {}])) },
    Mounts: [],
    // hull's own: the isolation of the instance (container or vm)
    Isolation: r.kind,
  };
}

/** `t=` in seconds, or undefined. */
function timeout(c: Call): number | undefined {
  const t = c.query.get('t');
  if (t === null || t === '') return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < -1) throw new ApiError(400, `invalid t "${t}": expected whole seconds`);
  return n < 0 ? undefined : n;
}

/**
 * An exited instance, until its next start (its startedAt changes): docker's clients attach and wait before they
 * start one again (docker start -a). Returns the record as it is then, or undefined once it is removed.
 */
async function nextStart(
  engine: Engine,
  rec: InstanceRecord,
  signal: AbortSignal,
): Promise<InstanceRecord | undefined> {
  const before = rec.startedAt;
  let cur: InstanceRecord | undefined = rec;
  // (not at `created`: a start passes through it while the driver makes the new run, the old exit still there)
  while (cur && !live(cur) && (cur.state === 'created' || cur.startedAt === before)) {
    await new Promise((r) => setTimeout(r, 50));
    signal.throwIfAborted();
    cur = await refresh(engine, cur);
  }
  return cur;
}

/**
 * Wait for an exit: `not-running` answers at once for an instance that is not running; `next-exit` waits for the
 * next one (docker run asks before it starts the instance); `removed` also waits until --rm removed it.
 */
async function waitCondition(engine: Engine, ref: InstanceRecord, condition: string, signal: AbortSignal) {
  let code = ref.exitCode ?? 0;
  let rec = await refresh(engine, ref);
  if (rec && !live(rec) && rec.state !== 'created' && condition !== 'not-running')
    rec = await nextStart(engine, rec, signal);
  if (rec && (live(rec) || (rec.state === 'created' && condition !== 'not-running'))) {
    const info = await engine.driver(rec.kind).waitExit(engine.context(rec), signal);
    code = info.exitCode;
    const cur = engine.store.get(rec.id);
    if (cur && live(cur)) await handleExit(engine, cur, info);
  } else if (rec) code = rec.exitCode ?? 0;
  if (condition === 'removed') {
    while (engine.store.get(ref.id)) {
      await new Promise((r) => setTimeout(r, 20));
      signal.throwIfAborted();
    }
  }
  return code;
}

/**
 * The engine's inspect document with what docker's clients rely on and the document may leave out: `Name` with
 * docker's leading slash (docker-compose strips one character), `Config.Image`, and an entry in
 * `NetworkSettings.Networks` for every network the instance is configured for, running or not, whose aliases hold
 * the short id (docker-compose reconnects an instance whose entry lacks it), and `HostConfig.LogConfig`.
 */
export function dockerInspect(doc: Record<string, unknown>, rec: InstanceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { ...doc };
  if (typeof out.Name === 'string' && !out.Name.startsWith('/')) out.Name = `/${out.Name}`;
  const config = (out.Config ?? {}) as Record<string, unknown>;
  if (!config.Image) out.Config = { ...config, Image: rec.image };
  // docker-compose tails only instances whose log driver it sees
  const hc = (out.HostConfig ?? {}) as Record<string, unknown>;
  if (!hc.LogConfig) out.HostConfig = { ...hc, LogConfig: { Type: rec.config.log?.driver ?? 'k8s-file', Config: {} } };
  const ns = { ...((out.NetworkSettings ?? {}) as Record<string, unknown>) };
  const nets = { ...((ns.Networks ?? {}) as Record<string, Record<string, unknown>>) };
  for (const n of rec.config.networks ?? []) {
    const cur = nets[n.name] ?? {};
    const aliases = new Set([...((cur.Aliases as string[] | null) ?? []), ...(n.aliases ?? []), rec.id.slice(0, 12)]);
    nets[n.name] = {
      IPAMConfig: n.ip ? { IPv4Address: n.ip } : null,
      Links: null,
      NetworkID: '',
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      MacAddress: '',
      ...cur,
      Aliases: [...aliases],
    };
  }
  ns.Networks = nets;
  out.NetworkSettings = ns;
  return out;
}

/** Per-instance terminals of the attach sessions (for /containers/{id}/resize). */
const terminals = new Map<string, Terminal>();

export function containerRoutes(r: Router, streams: Streams): void {
  r.on('POST', '/containers/create', async (c, res) => {
    const req = createRequestOf(await c.body(), c.query.get('name') ?? undefined);
    try {
      await c.engine.images.resolve(req.image);
    } catch (e) {
      if (e instanceof NotFoundError) throw new ApiError(404, `No such image: ${req.image}`);
      throw e;
    }
    const rec = await createInstance(c.engine, req);
    sendJson(res, 201, { Id: rec.id, Warnings: [] });
  });

  r.on('GET', '/containers/json', async (c, res) => {
    // the engine's listing (hull ps): docker's filters and their errors (400), newest first; limit= is docker's -n
    const limit = Number(c.query.get('limit') ?? -1);
    const recs = await listInstances(c.engine, {
      all: flag(c.query, 'all'),
      filters: parseFilterJson(c.query.get('filters') ?? ''),
      ...(Number.isInteger(limit) && limit > 0 ? { last: limit } : {}),
    });
    const size = flag(c.query, 'size');
    const out: Record<string, unknown>[] = [];
    for (const rec of recs) {
      const entry = containerListEntry(rec, c.engine);
      if (size) {
        const s = await instanceSizes(c.engine, rec);
        entry.SizeRw = s.rw;
        entry.SizeRootFs = s.rootFs;
      }
      out.push(entry);
    }
    sendJson(res, 200, out);
  });

  r.on('GET', '/containers/{id}/json', async (c, res) => {
    const rec = await refreshForView(c.engine, lookupContainer(c.engine, c.params.id!));
    if (!rec) throw new ApiError(404, `No such container: ${c.params.id}`);
    sendJson(res, 200, dockerInspect(describeInstance(c.engine, rec), rec));
  });

  r.on('POST', '/containers/{id}/start', async (c, res) => {
    const rec = await refresh(c.engine, lookupContainer(c.engine, c.params.id!));
    if (!rec) throw new ApiError(404, `No such container: ${c.params.id}`);
    if (live(rec)) return noContent(res, 304);
    await startInstance(c.engine, rec);
    noContent(res);
  });

  r.on('POST', '/containers/{id}/stop', async (c, res) => {
    const rec = await refresh(c.engine, lookupContainer(c.engine, c.params.id!));
    if (!rec || !live(rec)) return noContent(res, 304);
    await stopInstance(c.engine, rec, timeout(c));
    noContent(res);
  });

  r.on('POST', '/containers/{id}/restart', async (c, res) => {
    await restartInstance(c.engine, lookupContainer(c.engine, c.params.id!), timeout(c));
    noContent(res);
  });

  r.on('POST', '/containers/{id}/kill', async (c, res) => {
    const rec = await refresh(c.engine, lookupContainer(c.engine, c.params.id!));
    if (!rec || !live(rec)) throw new ApiError(409, `Container ${c.params.id} is not running`);
    const sig = c.query.get('signal');
    await killInstance(c.engine, rec, sig ? parseSignal(/^\d+$/.test(sig) ? sig : sig.toUpperCase()) : 'SIGKILL');
    noContent(res);
  });

  r.on('POST', '/containers/{id}/pause', async (c, res) => {
    await pauseInstance(c.engine, lookupContainer(c.engine, c.params.id!));
    noContent(res);
  });

  r.on('POST', '/containers/{id}/unpause', async (c, res) => {
    await unpauseInstance(c.engine, lookupContainer(c.engine, c.params.id!));
    noContent(res);
  });

  r.on('POST', '/containers/{id}/rename', async (c, res) => {
    const name = c.query.get('name');
    if (!name) throw new ApiError(400, 'rename needs ?name=');
    await renameInstance(c.engine, lookupContainer(c.engine, c.params.id!), name);
    noContent(res);
  });

  r.on('DELETE', '/containers/{id}', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const cur = await refresh(c.engine, rec);
    if (cur && live(cur) && !flag(c.query, 'force'))
      throw new ApiError(
        409,
        `You cannot remove a ${cur.state} container ${cur.id}. Stop the container before attempting removal or force remove`,
      );
    await removeInstance(c.engine, rec, { force: flag(c.query, 'force'), volumes: flag(c.query, 'v') });
    noContent(res);
  });

  r.on('POST', '/containers/{id}/wait', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const condition = c.query.get('condition') || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(condition))
      throw new ApiError(400, `invalid condition "${condition}": use not-running, next-exit or removed`);
    // the headers go out at once: docker's clients take them as "the wait is registered" before they start
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const ac = streams.track(res);
    try {
      const code = await waitCondition(c.engine, rec, condition, ac.signal);
      res.end(JSON.stringify({ StatusCode: code, Error: null }) + '\n');
    } catch (e) {
      if (!ac.signal.aborted)
        res.end(JSON.stringify({ StatusCode: -1, Error: { Message: (e as Error).message } }) + '\n');
      else res.destroy();
    } finally {
      streams.untrack(res);
    }
  });

  r.on('GET', '/containers/{id}/logs', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const stdout = flag(c.query, 'stdout');
    const stderr = flag(c.query, 'stderr');
    if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream');
    const tailQ = c.query.get('tail');
    const tail = tailQ === null || tailQ === '' || tailQ === 'all' ? undefined : Number(tailQ);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0))
      throw new ApiError(400, `invalid tail "${tailQ}": expected a number or all`);
    const sinceQ = Number(c.query.get('since') ?? 0);
    const untilQ = Number(c.query.get('until') ?? 0);
    const timestamps = flag(c.query, 'timestamps');
    const tty = rec.config.tty;
    res.writeHead(200, { 'Content-Type': tty ? RAW_STREAM : MULTIPLEXED_STREAM });
    res.flushHeaders();
    const ac = streams.track(res);
    const s = sink(res, tty);
    try {
      await instanceLogs(
        c.engine,
        rec,
        {
          follow: flag(c.query, 'follow'),
          ...(tail !== undefined ? { tail } : {}),
          ...(sinceQ > 0 ? { since: sinceQ * 1000 } : {}),
        },
        (l) => {
          if (untilQ > 0 && l.timeMs > untilQ * 1000) return;
          if (l.stream === 'stdout' ? !stdout : !stderr) return;
          s.write(l.stream === 'stderr' ? 2 : 1, timestamps ? `${l.time} ${l.text}` : l.text);
        },
        ac.signal,
      );
      res.end();
    } finally {
      streams.untrack(res);
    }
  });

  r.on('POST', '/containers/{id}/resize', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    terminals.get(rec.id)?.resize(c.query);
    res.writeHead(200);
    res.end();
  });

  r.hijack('POST', '/containers/{id}/attach', async (c, h) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    await attach(c, h, rec, streams);
  });
}

/** docker attach (and docker run's attach before the start): the instance's stdio over the hijacked connection. */
async function attach(c: Call, h: Hijack, rec: InstanceRecord, streams: Streams): Promise<void> {
  const q = c.query;
  const tty = rec.config.tty;
  const wantStdin = flag(q, 'stdin') && rec.config.stdin;
  const wantOut = flag(q, 'stdout');
  const wantErr = flag(q, 'stderr');
  h.upgrade(tty ? RAW_STREAM : MULTIPLEXED_STREAM);
  const ac = streams.trackSocket(h.socket);
  const s = sink(h.socket, tty);
  try {
    if (tty || wantStdin) {
      const term = new Terminal();
      terminals.set(rec.id, term);
      const stdio: StdioStreams = {
        stdin: wantStdin ? h.socket : null,
        stdout: wantOut ? streamWritable(s, 1) : streamWritable(sink(devNull, tty), 1),
        stderr: wantErr ? streamWritable(s, 2) : streamWritable(sink(devNull, tty), 2),
        ...term.stdio(),
      };
      const ended = new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve()));
      try {
        await Promise.race([c.engine.driver(rec.kind).attach(c.engine.context(rec), stdio), ended]);
      } finally {
        if (terminals.get(rec.id) === term) terminals.delete(rec.id);
      }
    } else {
      // no input: the output as the log records it, from now until the process exits (an exited instance's
      // next run: docker start -a attaches first)
      const since = Date.now();
      const cur = rec.state === 'exited' ? await nextStart(c.engine, rec, ac.signal) : rec;
      if (cur)
        await instanceLogs(
          c.engine,
          cur,
          // what is written from now on (by time, not position: the log file may not be there yet)
          { follow: true, since },
          (l) => {
            if (l.stream === 'stdout' ? wantOut : wantErr) s.write(l.stream === 'stderr' ? 2 : 1, l.text);
          },
          ac.signal,
        );
    }
    h.socket.end();
  } finally {
    streams.untrackSocket(h.socket);
  }
}

/** Where output nobody asked for goes. */
const devNull = { write: () => true, destroyed: false, writableEnded: false } as unknown as NodeJS.WritableStream;

export type { ServerResponse };
