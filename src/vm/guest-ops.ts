/**
 * What hull does in a full OS disk VM through its QEMU guest agent (the monitor relays each command: ctl.sock's
 * `guest` request, src/vm/monitor.ts): `hull exec` (guest-exec, then guest-exec-status until the process has
 * exited; stdin and the output travel base64-encoded in those messages, so the output comes when the process
 * ends), `hull cp` both ways (guest-file-open/read/write/close, 1 MiB at a time), file system freeze and thaw
 * for consistent snapshots (guest-fsfreeze-freeze/thaw).
 */
import { closeSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  GuestAgentError,
  HostSupportError,
  InvalidArgumentError,
  NotFoundError,
  StateError,
} from '../common/errors.js';
import type { ExecOptions, StdioStreams } from '../common/instance.js';
import { ctlRequest } from './ctl.js';
import type { GuestExecStatus } from './guest-agent.js';

const CHUNK = 1024 * 1024;

/** One guest agent command through the monitor. */
export async function guestCommand<R = unknown>(
  dir: string,
  name: string,
  command: string,
  args?: Record<string, unknown>,
  o: { timeoutMs?: number; noAnswer?: boolean } = {},
): Promise<R> {
  const a = await ctlRequest(dir, { op: 'guest', command, ...(args ? { args } : {}), ...o }, name).catch((e: Error) => {
    throw new StateError(`VM ${name} is not running: ${e.message}`);
  });
  if (!a.ok) {
    if (a.kind === 'no-guest-agent' || a.kind === 'state')
      throw new StateError(`cannot reach the guest of VM ${name}: ${a.error ?? 'no guest agent'}`);
    throw new GuestAgentError(`VM ${name}: ${a.error ?? 'the guest agent failed'}`);
  }
  return a.return as R;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer | string) => chunks.push(typeof c === 'string' ? Buffer.from(c) : c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    (stream as NodeJS.ReadableStream & { resume?: () => void }).resume?.();
  });
}

/** The instance's environment with exec's -e on top (same keys replaced), HOME for root when unset. */
function execEnv(base: string[], extra: string[], user: string | undefined): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  if (!out.has('PATH')) out.set('PATH', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  if (!out.has('HOME') && (!user || user === 'root' || user === '0')) out.set('HOME', 'HOME=/root');
  return [...out.values()];
}

/** `hull exec` in a disk VM through the guest agent; resolves with the exit status (docker's: 128+n for a signal). */
export async function guestExec(
  dir: string,
  name: string,
  baseEnv: string[],
  opts: ExecOptions,
  stdio: StdioStreams,
): Promise<number> {
  if (opts.tty)
    throw new InvalidArgumentError(
      `hull exec -t in VM ${name}: its QEMU guest agent runs commands without a terminal; leave out -t, or use hull console (or ssh)`,
    );
  let argv = [...opts.command];
  if (argv.length === 0) throw new InvalidArgumentError('hull exec needs a command');
  // the guest agent runs commands as root in /: the user and the directory through the guest's own tools
  if (opts.workdir) argv = ['sh', '-c', 'cd -- "$0" && exec "$@"', opts.workdir, ...argv];
  if (opts.user && opts.user !== 'root' && opts.user !== '0') {
    const [user, group] = opts.user.split(':') as [string, string | undefined];
    argv =
      group === undefined && !/^\d+$/.test(user)
        ? ['runuser', '-u', user, '--', ...argv]
        : ['setpriv', '--reuid', user, '--regid', group ?? user, '--clear-groups', '--', ...argv];
  }
  const input = opts.stdin && !opts.detach && stdio.stdin ? await readAll(stdio.stdin) : null;
  let started: { pid: number };
  try {
    started = await guestCommand<{ pid: number }>(dir, name, 'guest-exec', {
      path: argv[0],
      arg: argv.slice(1),
      env: execEnv(baseEnv, opts.env, opts.user),
      ...(input && input.length > 0 ? { 'input-data': input.toString('base64') } : {}),
      'capture-output': !opts.detach,
    });
  } catch (e) {
    // GLib's spawn error: "Failed to execute child process “x” (No such file or directory)"
    if (e instanceof GuestAgentError && /Failed to execute child process/.test(e.message)) {
      if (/No such file or directory/.test(e.message))
        throw new CommandNotFoundError(`${opts.command[0]}: executable file not found in the VM's $PATH`);
      throw new CommandNotExecutableError(
        `cannot run ${opts.command[0]} in VM ${name}: ${e.message.replace(/.*\(/, '(')}`,
      );
    }
    throw e;
  }
  if (opts.detach) return 0;
  let wait = 50;
  for (;;) {
    const st = await guestCommand<GuestExecStatus>(dir, name, 'guest-exec-status', { pid: started.pid });
    if (st.exited) {
      if (st['out-data']) stdio.stdout.write(Buffer.from(st['out-data'], 'base64'));
      if (st['err-data']) stdio.stderr.write(Buffer.from(st['err-data'], 'base64'));
      if (st['out-truncated'] || st['err-truncated'])
        stdio.stderr.write(`hull: the guest agent cut the output of ${opts.command[0]} short (its limit is 16 MiB)\n`);
      if (st.signal !== undefined) return 128 + st.signal;
      return st.exitcode ?? 255;
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 500);
  }
}

/** Open a guest file; a directory target becomes target/<name> (docker cp's rule). */
async function openGuest(
  dir: string,
  name: string,
  path: string,
  mode: 'r' | 'w',
  intoName?: string,
): Promise<{ handle: number; path: string }> {
  try {
    return { handle: await guestCommand<number>(dir, name, 'guest-file-open', { path, mode }), path };
  } catch (e) {
    if (e instanceof GuestAgentError && intoName && /Is a directory/i.test(e.message)) {
      const inner = path.replace(/\/+$/, '') + '/' + intoName;
      return { handle: await guestCommand<number>(dir, name, 'guest-file-open', { path: inner, mode }), path: inner };
    }
    if (e instanceof GuestAgentError && /No such file or directory/.test(e.message))
      throw new NotFoundError(`no such file in VM ${name}: ${path}`);
    throw e;
  }
}

/** hull cp HOST VM:PATH: one regular file, its permission bits kept. */
export async function guestCopyIn(dir: string, name: string, hostPath: string, guestPath: string): Promise<void> {
  let st;
  try {
    st = statSync(hostPath);
  } catch {
    throw new NotFoundError(`no such file on the host: ${hostPath}`);
  }
  if (!st.isFile())
    throw new HostSupportError(
      `hull cp into VM ${name} copies regular files through its guest agent: ${hostPath} is not one (copy a tar file, and unpack it with hull exec)`,
    );
  const f = await openGuest(dir, name, guestPath, 'w', basename(hostPath));
  const fd = openSync(hostPath, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      await guestCommand(dir, name, 'guest-file-write', {
        handle: f.handle,
        'buf-b64': buf.subarray(0, n).toString('base64'),
      });
    }
  } finally {
    closeSync(fd);
    await guestCommand(dir, name, 'guest-file-close', { handle: f.handle }).catch(() => undefined);
  }
  // guest-file-open makes new files 0600 (qemu-ga's umask): set the source's bits
  const mode = (st.mode & 0o7777).toString(8);
  const nothing = { write: () => true } as unknown as NodeJS.WritableStream;
  await guestExec(
    dir,
    name,
    [],
    { command: ['chmod', mode, f.path], env: [], tty: false, stdin: false, privileged: false, detach: false },
    { stdin: null, stdout: nothing, stderr: nothing },
  ).catch(() => undefined);
}

/** hull cp VM:PATH HOST: one regular file (a host directory target gets the file's name in it). */
export async function guestCopyOut(dir: string, name: string, guestPath: string, hostPath: string): Promise<void> {
  let target = hostPath;
  try {
    if (statSync(hostPath).isDirectory()) target = join(hostPath, basename(guestPath));
  } catch {
    /* a new file */
  }
  const f = await openGuest(dir, name, guestPath, 'r');
  const fd = openSync(target, 'w', 0o644);
  let done = false;
  try {
    for (;;) {
      const r = await guestCommand<{ count: number; 'buf-b64': string; eof: boolean }>(dir, name, 'guest-file-read', {
        handle: f.handle,
        count: CHUNK,
      });
      if (r.count > 0) writeSync(fd, Buffer.from(r['buf-b64'], 'base64'));
      if (r.eof || r.count === 0) break;
    }
    done = true;
  } catch (e) {
    if (e instanceof GuestAgentError && /Is a directory/i.test(e.message))
      throw new HostSupportError(
        `hull cp out of VM ${name} copies regular files through its guest agent: ${guestPath} is a directory (tar it with hull exec first)`,
      );
    throw e;
  } finally {
    closeSync(fd);
    if (!done) rmSync(target, { force: true });
    await guestCommand(dir, name, 'guest-file-close', { handle: f.handle }).catch(() => undefined);
  }
}

/** Freeze the guest's file systems (for a consistent disk snapshot); resolves with how many were frozen. */
export function guestFreeze(dir: string, name: string): Promise<number> {
  return guestCommand<number>(dir, name, 'guest-fsfreeze-freeze', undefined, { timeoutMs: 60_000 });
}

/** Thaw them again; resolves with how many were thawed. */
export function guestThaw(dir: string, name: string): Promise<number> {
  return guestCommand<number>(dir, name, 'guest-fsfreeze-thaw', undefined, { timeoutMs: 60_000 });
}
