/**
 * conmon mechanism: build its arguments and start it with the pipes of its API version 1.
 *
 * conmon double-forks (the process we spawn exits at once; the monitor lives on, re-parented,
 * so containers outlive hull). It talks back through inherited file descriptors named by
 * environment variables:
 *  - _OCI_SYNCPIPE: newline-terminated JSON messages. With --api-version 1 every message is
 *    `{"data": N}` or `{"data": N, "message": "..."}`: first the container's pid (N > 0) or a
 *    create failure (N < 0 and the runtime's stderr as message); for exec sessions, later the
 *    exit code of the exec'ed process.
 *  - _OCI_STARTPIPE: conmon blocks reading it before it forks anything; exec sessions with
 *    --exec-attach read it a second time before running the runtime (after the client attached).
 *  - _OCI_ATTACHPIPE: exec sessions with --exec-attach: `{"data": 0}` once the attach socket
 *    exists.
 * Node hands extra descriptors to a child through the stdio array: entry N is fd N in the
 * child; 'pipe' entries are socket pairs, which conmon reads and writes like pipes. Descriptors for the
 * runtime to pass on to the process (`passFds`, with the runtime's --preserve-fds) come first, at fd 3
 * onwards, and the pipes after them: conmon marks its pipes close-on-exec, so only the passed ones reach
 * the runtime.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { HostCommandError, HostSupportError } from '../common/errors.js';
import { findExecutable } from './probe.js';

/** Arguments for one conmon instance (a container, or an exec session with `exec`). */
export interface ConmonOptions {
  /** container id (also the runtime's container name) */
  id: string;
  /** unique id of this conmon session (the container id, or an exec session id) */
  uuid: string;
  name: string;
  /** runtime executable (runc, crun or hull's crun wrapper) */
  runtimePath: string;
  /** global runtime arguments, e.g. --root=DIR (each passed with --runtime-arg) */
  runtimeArgs: string[];
  /** bundle dir: config.json for create; also where conmon puts attach socket and ctl fifo */
  bundle: string;
  /** where the runtime writes the container's (or exec process's) pid */
  pidFile: string;
  /** where conmon writes its own pid */
  conmonPidFile?: string;
  /** k8s-file log path; omit for no log */
  logPath?: string;
  /** cap the log at this size (conmon then starts over) */
  logSizeMax?: number;
  /** conmon writes <exitDir>/<uuid> with the exit code */
  exitDir: string;
  /** conmon writes <persistDir>/exit and, on OOM kills, <persistDir>/oom */
  persistDir?: string;
  terminal: boolean;
  stdin: boolean;
  leaveStdinOpen?: boolean;
  /** argv run by conmon after the process exits */
  exitCommand?: string[];
  /** seconds conmon waits before it runs the exit command */
  exitDelay?: number;
  /** exec session: the process.json to run in the existing container */
  exec?: { processSpec: string; attach: boolean };
  /** extra arguments for the runtime's create or exec command (conmon's --runtime-opt) */
  runtimeOpts?: string[];
  /** conmon's own log level (error keeps it quiet) */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** kill the container after this many seconds */
  timeout?: number;
}

let conmonPath: string | null = null;

/** The conmon binary, or a HostSupportError naming what to install. */
export function findConmon(): string {
  if (conmonPath) return conmonPath;
  const p = findExecutable('conmon');
  if (!p) throw new HostSupportError('conmon is not installed; install the conmon package to run containers');
  conmonPath = p;
  return p;
}

/**
 * conmon's command line. The attach socket and ctl fifo are put in the bundle dir
 * (--full-attach): clients connect through /proc/self/fd/<dirfd>/attach, which keeps the
 * socket address short however long the bundle path is (unix socket paths are limited to 108 bytes).
 */
export function conmonArgs(o: ConmonOptions): string[] {
  if (o.logPath?.includes(':'))
    throw new HostSupportError(
      `conmon cannot log to a path containing ':' (${o.logPath}); choose a hull root without ':'`,
    );
  const a = ['--api-version', '1', '-c', o.id, '-u', o.uuid, '-n', o.name, '-r', o.runtimePath];
  for (const r of o.runtimeArgs) a.push(`--runtime-arg=${r}`);
  a.push('-b', o.bundle, '-p', o.pidFile);
  if (o.conmonPidFile) a.push('-P', o.conmonPidFile);
  a.push('-l', o.logPath ? `k8s-file:${o.logPath}` : 'none');
  if (o.logSizeMax && o.logSizeMax > 0) a.push('--log-size-max', String(o.logSizeMax));
  a.push('--exit-dir', o.exitDir);
  if (o.persistDir) a.push('--persist-dir', o.persistDir);
  a.push('--full-attach', '--log-level', o.logLevel ?? 'error');
  if (o.terminal) a.push('-t');
  if (o.stdin) a.push('-i');
  if (o.leaveStdinOpen) a.push('--leave-stdin-open');
  if (o.timeout && o.timeout > 0) a.push('-T', String(o.timeout));
  if (o.exec) {
    a.push('-e', '--exec-process-spec', o.exec.processSpec);
    if (o.exec.attach) a.push('--exec-attach');
  }
  for (const r of o.runtimeOpts ?? []) a.push(`--runtime-opt=${r}`);
  if (o.exitCommand && o.exitCommand.length > 0) {
    a.push('--exit-command', o.exitCommand[0]!);
    for (const x of o.exitCommand.slice(1)) a.push(`--exit-command-arg=${x}`);
    if (o.exitDelay) a.push('--exit-delay', String(o.exitDelay));
  }
  return a;
}

/** One message from conmon's sync or attach pipe. */
export interface SyncMessage {
  data: number;
  message?: string;
}

/** Reads newline-delimited JSON messages from a stream, one at a time, in order. */
class MessageReader {
  private buf = '';
  private queue: SyncMessage[] = [];
  private waiters: { resolve: (m: SyncMessage | null) => void; reject: (e: Error) => void }[] = [];
  private ended = false;
  private error: Error | null = null;

  constructor(readonly stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) this.push(line);
      }
    });
    stream.on('end', () => this.finish(null));
    stream.on('close', () => this.finish(null));
    stream.on('error', (e) => this.finish(e));
  }

  private push(line: string): void {
    let msg: SyncMessage;
    try {
      msg = JSON.parse(line) as SyncMessage;
    } catch {
      msg = { data: -1, message: `unparsable message from conmon: ${line}` };
    }
    const w = this.waiters.shift();
    if (w) w.resolve(msg);
    else this.queue.push(msg);
  }

  private finish(e: Error | null): void {
    if (this.ended) return;
    if (this.buf.trim()) this.push(this.buf.trim());
    this.buf = '';
    this.ended = true;
    this.error = e;
    for (const w of this.waiters.splice(0)) e ? w.reject(e) : w.resolve(null);
  }

  /** The next message, or null when conmon closed the pipe without one. */
  next(): Promise<SyncMessage | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return this.error ? Promise.reject(this.error) : Promise.resolve(null);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** A started conmon: its pipes, for the caller to drive the protocol. */
export class ConmonProcess {
  private readonly sync: MessageReader;
  private readonly attachPipe: MessageReader | null;
  private readonly startPipe: Writable | null;
  private stderr = '';
  /** resolves with the exit status of the process we spawned (the first conmon fork) */
  readonly launched: Promise<number | null>;

  /** `first`: the fd of the sync pipe (3, or after the descriptors passed to the runtime) */
  constructor(
    private readonly child: ChildProcess,
    withStart: boolean,
    withAttach: boolean,
    first = 3,
  ) {
    const io = child.stdio as unknown as (Readable | Writable | null)[];
    this.sync = new MessageReader(io[first] as Readable);
    this.startPipe = withStart ? (io[first + 1] as Writable) : null;
    // conmon may be gone before we write (it refused its arguments): the caller learns that
    // from the sync pipe, not from an unhandled EPIPE
    this.startPipe?.on('error', () => undefined);
    this.attachPipe = withAttach ? new MessageReader(io[first + 2] as Readable) : null;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      this.stderr += s;
    });
    child.stdout?.resume();
    this.launched = new Promise((resolve, reject) => {
      child.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'ENOENT'
            ? new HostSupportError('conmon is not installed; install the conmon package to run containers')
            : e,
        ),
      );
      child.on('exit', (code) => resolve(code));
    });
    // the first fork exits with 0 right away; anything else means conmon refused its arguments
    this.launched.then(
      (code) => {
        if (code !== 0) this.closeAll();
      },
      () => this.closeAll(),
    );
  }

  /** stderr of the spawned conmon (arguments errors end up here). */
  get errorOutput(): string {
    return this.stderr;
  }

  /** The next sync pipe message (null: conmon closed it without one). */
  async nextSync(): Promise<SyncMessage | null> {
    return this.sync.next();
  }

  /** The next attach pipe message (exec with attach). */
  async nextAttach(): Promise<SyncMessage | null> {
    if (!this.attachPipe) throw new Error('conmon was started without an attach pipe');
    return this.attachPipe.next();
  }

  /** Write one byte to the start pipe (conmon reads it before forking, and exec-attach again before exec). */
  signalStart(): void {
    if (!this.startPipe) throw new Error('conmon was started without a start pipe');
    this.startPipe.write(Buffer.from([0]));
  }

  /**
   * Throw a HostCommandError when conmon refused to start (bad arguments, missing runtime);
   * resolves once the first fork has exited successfully.
   */
  async checkLaunched(): Promise<void> {
    const code = await this.launched;
    if (code !== 0)
      throw new HostCommandError('conmon', ['(start)'], code, this.stderr || 'conmon exited before reporting');
  }

  /** Kill the spawned conmon if it has not daemonized yet (it waits on the start pipe), then close the pipes. */
  abort(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.closeAll();
  }

  /** Close our ends of all pipes, so this process does not wait for conmon. */
  closeAll(): void {
    const io = this.child.stdio as unknown as (Readable | Writable | null)[];
    for (let fd = 3; fd < io.length; fd++) io[fd]?.destroy();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.child.unref();
  }
}

/**
 * Start conmon. `withStart`: pass a start pipe (conmon then waits for {@link ConmonProcess.signalStart});
 * exec sessions with attach get an attach pipe as well. conmon's stdin is /dev/null, its cwd
 * `cwd` (it drops an "oom" marker file there). `passFds`: open descriptors that conmon gets as fd 3, 4, …
 * and hands to the runtime (which passes them on with --preserve-fds in `runtimeOpts`).
 */
export function spawnConmon(
  o: ConmonOptions,
  opts: { withStart?: boolean; cwd?: string; env?: NodeJS.ProcessEnv; passFds?: number[] } = {},
): ConmonProcess {
  const withAttach = Boolean(o.exec?.attach);
  const withStart = Boolean(opts.withStart) || withAttach;
  const passed = opts.passFds ?? [];
  const first = 3 + passed.length;
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...passed, 'pipe'];
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), _OCI_SYNCPIPE: String(first) };
  if (withStart) {
    stdio.push('pipe');
    env._OCI_STARTPIPE = String(first + 1);
  }
  if (withAttach) {
    stdio.push('pipe');
    env._OCI_ATTACHPIPE = String(first + 2);
  }
  const child = spawn(findConmon(), conmonArgs(o), { stdio, env, cwd: opts.cwd ?? o.bundle, detached: true });
  return new ConmonProcess(child, withStart, withAttach, first);
}
