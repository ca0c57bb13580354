/**
 * A private virtual X display: TigerVNC's Xvnc (Debian's tigervnc-standalone-server), an X server whose screen
 * is served over VNC, for one graphical application (`hull run --display`).
 *
 * Each server runs in a mount namespace of its own in which a directory of the caller's (`socketDir`) is bound
 * over /tmp/.X11-unix, so its X socket (`<socketDir>/X<n>`) is private to it and to whoever gets that directory
 * (the container, by a bind mount); several servers side by side never meet. It listens on no TCP port (X or
 * VNC) and on no abstract socket (those are shared by every process of a network namespace): X clients come
 * through the socket file, VNC clients through a unix socket (`vncSocket`, relative to `dir`: sun_path is short).
 * VNC needs no password (SecurityTypes None): reaching the socket, in a 0700 directory, is the access control.
 *
 * The server is detached (it outlives the hull command that starts it) with `dir` as its working directory,
 * which is how its processes are found again (`findXvncs`); its pid goes to `pidFile`. Readiness is the X
 * server's own signal: -displayfd writes the display number once it accepts clients.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { HostCommandError, HostSupportError } from '../common/errors.js';
import { findExecutable } from './probe.js';
import { killAndWait, processAlive } from './proc.js';

/** Where X clients look for the socket of display :N (X11's fixed directory). */
export const X11_SOCKET_DIR = '/tmp/.X11-unix';

export interface XvncOptions {
  /** the working directory (the instance dir): relative paths below are taken from it */
  dir: string;
  /** the directory bound over /tmp/.X11-unix in the server's namespace (made if missing) */
  socketDir: string;
  /** the VNC server's unix socket, relative to `dir` */
  vncSocket: string;
  pidFile: string;
  logFile: string;
  /** WIDTHxHEIGHT, default 1280x800 */
  geometry?: string;
  /** the name VNC clients show */
  desktop?: string;
  /** how long to wait for the server (default 15 s) */
  timeoutMs?: number;
}

export interface XvncServer {
  pid: number;
  /** the display number (DISPLAY=:<n>; the socket is <socketDir>/X<n>) */
  display: number;
}

export function xvncBinary(): string {
  const p = findExecutable('Xvnc');
  if (!p)
    throw new HostSupportError(
      "Xvnc is not installed: a graphical container's display is TigerVNC's Xvnc (apt-get install tigervnc-standalone-server)",
    );
  return p;
}

/** Start a private Xvnc; resolves once it accepts X clients. */
export async function startXvnc(o: XvncOptions): Promise<XvncServer> {
  const xvnc = xvncBinary();
  const unshare = findExecutable('unshare');
  if (!unshare)
    throw new HostSupportError('unshare (util-linux) is not installed: Xvnc runs in a mount namespace of its own');
  // the mount point in the host's /tmp (as an X server on the host would make it)
  if (!existsSync(X11_SOCKET_DIR)) {
    mkdirSync(X11_SOCKET_DIR, { recursive: true });
    chmodSync(X11_SOCKET_DIR, 0o1777); // what an X server would make it: sticky, for everyone
  }
  // a previous run's socket would be in the way
  rmSync(o.socketDir, { recursive: true, force: true });
  mkdirSync(o.socketDir, { recursive: true });
  chmodSync(o.socketDir, 0o1777);
  const args = [
    '-displayfd',
    '3',
    '-rfbunixpath',
    o.vncSocket,
    '-rfbunixmode',
    '0600',
    '-rfbport',
    '-1',
    '-SecurityTypes',
    'None',
    '-geometry',
    o.geometry ?? '1280x800',
    '-depth',
    '24',
    '-nolisten',
    'tcp',
    '-nolisten',
    'local',
    '-AlwaysShared',
    ...(o.desktop ? ['-desktop', o.desktop] : []),
  ];
  const script = `mount --bind "$1" ${X11_SOCKET_DIR} && shift && exec "$@"`;
  const log = openSync(o.logFile, 'a');
  const child = spawn(unshare, ['--mount', '--', 'sh', '-c', script, 'xvnc', resolve(o.socketDir), xvnc, ...args], {
    cwd: o.dir,
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
  });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new HostCommandError('Xvnc', args, null, 'could not be started');
  writeFileSync(o.pidFile, `${pid}\n`);
  const logTail = (): string => {
    try {
      return readFileSync(o.logFile, 'utf8').trim().split('\n').slice(-3).join('; ');
    } catch {
      return '';
    }
  };
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  try {
    const display = await new Promise<number>((resolveDisplay, reject) => {
      let text = '';
      const timer = setTimeout(
        () =>
          reject(new HostCommandError('Xvnc', args, null, `did not start in ${o.timeoutMs ?? 15000} ms: ${logTail()}`)),
        o.timeoutMs ?? 15_000,
      );
      fd3.setEncoding?.('utf8');
      fd3.on('data', (s: string) => {
        text += s;
        const m = /^(\d+)\n/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolveDisplay(Number(m[1]));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new HostCommandError('Xvnc', args, code, `exited (${signal ?? code}) before it was ready: ${logTail()}`),
        );
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    return { pid, display };
  } catch (e) {
    await stopXvnc(pid);
    throw e;
  } finally {
    (fd3 as unknown as { destroy(): void }).destroy();
    child.unref();
  }
}

/** The pid is an Xvnc working in `dir` (not a recycled pid). */
export function isXvncOf(pid: number, dir: string): boolean {
  if (!processAlive(pid)) return false;
  try {
    const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return /(^|\/)Xvnc$/.test(exe) && readlinkSync(`/proc/${pid}/cwd`) === resolve(dir);
  } catch {
    return false;
  }
}

/** Stop an Xvnc (SIGTERM, then SIGKILL); true when it is gone. */
export async function stopXvnc(pid: number, timeoutMs = 5000): Promise<boolean> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true; // gone
  }
  const deadline = Date.now() + Math.min(2000, timeoutMs);
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return (await killAndWait([pid], timeoutMs)).length === 0;
}

/** Every live Xvnc whose working directory is a directory directly under `parent`, with that directory's name. */
export function findXvncs(parent: string): { pid: number; name: string }[] {
  const base = resolve(parent);
  const out: { pid: number; name: string }[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of pids) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    try {
      const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (!/(^|\/)Xvnc$/.test(exe)) continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (!cwd.startsWith(base + '/')) continue;
      const rest = cwd.slice(base.length + 1);
      if (rest.includes('/') || !processAlive(pid)) continue;
      out.push({ pid, name: rest });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The path of display `n`'s socket in a socket directory. */
export function xSocketPath(socketDir: string, display: number): string {
  return join(socketDir, `X${display}`);
}
