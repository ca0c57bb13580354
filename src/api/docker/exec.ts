/** docker's exec endpoints: create a session, start it (hijacked, or detached), inspect it, resize it. */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { HullError } from '../../common/errors.js';
import type { ExecOptions, StdioStreams } from '../../common/instance.js';
import { execInstance } from '../../engine/lifecycle/exec.js';
import { refresh } from '../../engine/lifecycle/exit.js';
import { ApiError, type Call, noContent, type Router, sendJson } from '../http.js';
import type { Streams } from '../streams.js';
import { lookupContainer } from './containers.js';
import { MULTIPLEXED_STREAM, RAW_STREAM, sink, streamWritable } from './streams.js';
import { Terminal } from './terminal.js';

interface Session {
  id: string;
  containerId: string;
  opts: ExecOptions;
  attachStdout: boolean;
  attachStderr: boolean;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  term: Terminal;
  /** when it was created (sessions are forgotten an hour after they end, as docker does after a while) */
  at: number;
}

/** Exec sessions of this daemon (docker keeps them in memory too). */
const sessions = new Map<string, Session>();

function session(id: string): Session {
  const s = sessions.get(id);
  if (!s) throw new ApiError(404, `No such exec instance: ${id}`);
  return s;
}

function forgetOld(): void {
  const old = Date.now() - 3600_000;
  for (const [id, s] of sessions) if (!s.running && s.at < old) sessions.delete(id);
}

const nowhere = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

async function run(c: Call, s: Session, stdio: StdioStreams): Promise<number> {
  const rec = lookupContainer(c.engine, s.containerId);
  s.running = true;
  try {
    return await execInstance(c.engine, rec, s.opts, stdio);
  } catch (e) {
    // docker reports a command that cannot run through the session's output and exit code (126, 127)
    if (e instanceof HullError && (e.exitCode === 126 || e.exitCode === 127)) {
      stdio.stderr.write(`${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  } finally {
    s.running = false;
  }
}

export function execRoutes(r: Router, streams: Streams): void {
  r.on('POST', '/containers/{id}/exec', async (c, res) => {
    forgetOld();
    const rec = await refresh(c.engine, lookupContainer(c.engine, c.params.id!));
    if (!rec) throw new ApiError(404, `No such container: ${c.params.id}`);
    if (rec.state === 'paused')
      throw new ApiError(409, `Container ${rec.id} is paused, unpause the container before exec`);
    if (rec.state !== 'running') throw new ApiError(409, `Container ${rec.id} is not running`);
    const b = await c.body();
    const cmd = b.Cmd;
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((x) => typeof x !== 'string'))
      throw new ApiError(400, 'No exec command specified');
    const env = b.Env ?? [];
    if (!Array.isArray(env) || env.some((x) => typeof x !== 'string'))
      throw new ApiError(400, 'invalid Env: expected a list of strings');
    for (const k of ['User', 'WorkingDir'] as const)
      if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'string')
        throw new ApiError(400, `invalid ${k}: expected a string`);
    const id = randomBytes(32).toString('hex');
    sessions.set(id, {
      id,
      containerId: rec.id,
      opts: {
        command: cmd as string[],
        env: env as string[],
        tty: b.Tty === true,
        stdin: b.AttachStdin === true,
        privileged: b.Privileged === true,
        detach: false,
        ...(b.User ? { user: b.User as string } : {}),
        ...(b.WorkingDir ? { workdir: b.WorkingDir as string } : {}),
      },
      attachStdout: b.AttachStdout !== false,
      attachStderr: b.AttachStderr !== false,
      running: false,
      started: false,
      exitCode: null,
      term: new Terminal(),
      at: Date.now(),
    });
    sendJson(res, 201, { Id: id });
  });

  /** docker exec -d: no connection to keep; the command runs on in the daemon. */
  r.on('POST', '/exec/{id}/start', async (c, res) => {
    const s = session(c.params.id!);
    const b = await c.body();
    if (s.started) throw new ApiError(409, `exec ${s.id} has already been started`);
    s.started = true;
    if (b.Detach !== true) throw new ApiError(400, 'exec start without Detach needs an Upgrade: tcp connection');
    s.opts = { ...s.opts, stdin: false };
    void run(c, s, { stdin: null, stdout: nowhere(), stderr: nowhere() }).then(
      (code) => {
        s.exitCode = code;
      },
      () => {
        s.exitCode = 126;
      },
    );
    res.writeHead(200);
    res.end();
  });

  r.hijack('POST', '/exec/{id}/start', async (c, h) => {
    const s = session(c.params.id!);
    const b = await c.body();
    if (s.started) throw new ApiError(409, `exec ${s.id} has already been started`);
    s.started = true;
    const tty = b.Tty === true || s.opts.tty;
    h.upgrade(tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    const ac = streams.trackSocket(h.socket);
    const out = sink(h.socket, tty);
    try {
      const code = await Promise.race([
        run(c, s, {
          stdin: s.opts.stdin ? h.socket : null,
          stdout: s.attachStdout ? streamWritable(out, 1) : nowhere(),
          stderr: s.attachStderr ? streamWritable(out, 2) : nowhere(),
          ...s.term.stdio(),
        }),
        new Promise<number>((_, reject) =>
          ac.signal.addEventListener('abort', () => reject(new Error('the client went away'))),
        ),
      ]).catch((e: unknown) => {
        if (!ac.signal.aborted) out.write(2, `${(e as Error).message}\n`);
        return 126;
      });
      s.exitCode = code;
      h.socket.end();
    } finally {
      streams.untrackSocket(h.socket);
    }
  });

  r.on('GET', '/exec/{id}/json', async (c, res) => {
    const s = session(c.params.id!);
    sendJson(res, 200, {
      ID: s.id,
      Running: s.running,
      ExitCode: s.exitCode ?? 0,
      ProcessConfig: {
        tty: s.opts.tty,
        entrypoint: s.opts.command[0],
        arguments: s.opts.command.slice(1),
        privileged: s.opts.privileged,
        user: s.opts.user ?? '',
      },
      OpenStdin: s.opts.stdin,
      OpenStdout: s.attachStdout,
      OpenStderr: s.attachStderr,
      CanRemove: !s.running && s.started,
      ContainerID: s.containerId,
      DetachKeys: '',
      Pid: 0,
    });
  });

  r.on('POST', '/exec/{id}/resize', async (c, res) => {
    session(c.params.id!).term.resize(c.query);
    noContent(res, 200);
  });
}
