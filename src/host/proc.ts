/**
 * Running host programs: one small wrapper around child_process.spawn that captures stdout and
 * stderr and turns failures into HostCommandError (or HostSupportError when the program is not
 * installed). It is on the hot path of `hull run`, so it does nothing beyond spawn + collect:
 * no shell, no extra processes, no polling.
 */
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HostCommandError, HostSupportError } from '../common/errors.js';

/** Options for {@link runProgram}. */
export interface RunOptions {
  /** data written to the program's stdin (stdin is /dev/null otherwise) */
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** kill the program with SIGKILL after this many ms */
  timeoutMs?: number;
  /** resolve with the result instead of throwing when the program exits non-zero */
  allowFailure?: boolean;
  /** appended to the error message when the program fails: what the user can do */
  hint?: string;
  /**
   * do not capture stdout/stderr (give /dev/null): for programs that hand their stdio on to
   * long-lived children (runc create), whose pipes would otherwise stay open
   */
  discardOutput?: boolean;
}

/** What a finished program left behind. */
export interface RunResult {
  /** exit status, or null when killed by a signal */
  status: number | null;
  /** name of the signal that killed it, if any */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The error spawn gives when the program does not exist, as a clear one-liner. */
function missingProgram(program: string): HostSupportError {
  return new HostSupportError(`${program} is not installed or not in PATH; install it to use this feature`);
}

/**
 * Run `program args...`, wait for it to exit, and return its output.
 * Throws HostCommandError when it exits non-zero (unless `allowFailure`), HostSupportError
 * when the program does not exist.
 */
export function runProgram(program: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const output = opts.discardOutput ? 'ignore' : 'pipe';
    const stdio: StdioOptions = [opts.input !== undefined ? 'pipe' : 'ignore', output, output];
    const child = spawn(program, args, { stdio, env: opts.env ?? process.env, cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let failed: Error | undefined;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      failed = e.code === 'ENOENT' ? missingProgram(program) : e;
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        /* the program may exit without reading its input */
      });
      child.stdin!.end(opts.input);
    }
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      if (failed) return reject(failed);
      const result: RunResult = {
        status,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (status !== 0 && !opts.allowFailure) {
        const why = result.stderr || result.stdout || (signal ? `killed by ${signal}` : '');
        return reject(new HostCommandError(program, args, status, why, opts.hint));
      }
      resolve(result);
    });
  });
}

/**
 * Synchronous variant of {@link runProgram}, for the few places that cannot be async
 * (probes run once per process). Same error behaviour.
 */
export function runProgramSync(program: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(program, args, {
    input: opts.input,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) {
    const e = r.error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw missingProgram(program);
    throw e;
  }
  const result: RunResult = {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ? r.stdout.toString('utf8') : '',
    stderr: r.stderr ? r.stderr.toString('utf8') : '',
  };
  if (r.status !== 0 && !opts.allowFailure) {
    throw new HostCommandError(program, args, r.status, result.stderr || result.stdout, opts.hint);
  }
  return result;
}

/**
 * True when a process with this pid exists and is not a zombie. Reads /proc/<pid>/stat (one
 * read, no signal): a zombie conmon whose parent has not reaped it yet counts as gone.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // the state letter follows the command name, which is in parentheses and may contain spaces
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X' && state !== 'x';
}

/**
 * The process's start time (clock ticks after boot, /proc/<pid>/stat field 22), or null when it is gone.
 * A pid plus its start time names one process for good: pids are reused, the pair is not.
 */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether the process named by `pid` and its start time (see processStartTime) still runs: the same process, not
 * a later one that got the pid, and not a zombie (killed, not reaped yet: gone for every purpose of hull's).
 */
export function sameProcessAlive(pid: number, start: string | null | undefined): boolean {
  return !!start && processStartTime(pid) === start && processAlive(pid);
}

/** argv of a live process (from /proc/<pid>/cmdline), or null when it is gone. */
export function processArgv(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((_, i, a) => i < a.length - 1 || a[i] !== '');
  } catch {
    return null;
  }
}

/** A live process whose argv names an instance directory (see {@link processesNamingInstances}). */
export interface InstanceProcess {
  pid: number;
  argv: string[];
  /** the instance whose directory its argv names */
  id: string;
}

/**
 * Every live process but this one whose argv names a directory `<dir>/<id>` (a 64-hex instance id) under one
 * of `dirs` (each as given and resolved), with that id: how hull finds the supervisors of instances it has no
 * record of. One scan of /proc (tens of ms on a busy host), skipped when none of the directories exists.
 */
export function processesNamingInstances(dirs: readonly string[]): InstanceProcess[] {
  const existing = dirs.filter((d) => existsSync(d));
  if (existing.length === 0) return [];
  const prefixes = [...new Set(existing.flatMap((d) => [d, resolve(d)]))].map((d) => join(d, '/'));
  const out: InstanceProcess[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of pids) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const argv = processArgv(pid);
    if (!argv || argv.length === 0) continue;
    let id: string | undefined;
    for (const a of argv) {
      for (const p of prefixes) {
        const i = a.indexOf(p);
        const m = i >= 0 ? /^[0-9a-f]{64}/.exec(a.slice(i + p.length)) : null;
        if (m) id = m[0];
      }
      if (id) break;
    }
    if (!id || !processAlive(pid)) continue; // a zombie waiting for its parent
    out.push({ pid, argv, id });
  }
  return out;
}

/**
 * SIGKILL each process and wait (up to `timeoutMs`) until they are gone; returns the pids still alive. A
 * process gone meanwhile is fine.
 */
export async function killAndWait(pids: readonly number[], timeoutMs = 5000): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some((p) => processAlive(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return pids.filter((p) => processAlive(p));
}
