/**
 * `hull daemon` for the API tests: started on a test root and socket, ready once the socket answers docker's
 * /_ping (a readiness signal, not a sleep).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { DIST, type HullRoot, waitFor } from './hull.js';

export interface Daemon {
  child: ChildProcess;
  /** what the daemon wrote to stderr so far (one line per failed request) */
  log: () => string;
  exited: Promise<number | null>;
}

/** The status of GET /_ping on `socket`; rejects while nothing listens. */
function ping(socket: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'GET', path: '/_ping' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Start `hull --root ROOT daemon --socket SOCKET [ARGS…]`; resolves once the socket answers /_ping. `env`: more
 * environment for the daemon.
 */
export async function startDaemon(
  root: HullRoot,
  socket: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Daemon> {
  const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'daemon', '--socket', socket, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...root.env, ...env },
  });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log += s;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor(
    `the daemon to answer /_ping (${log})`,
    async () => (await ping(socket).catch(() => 0)) === 200,
    20_000,
    50,
  );
  return { child, log: () => log, exited };
}

/** Stops a daemon that still runs (SIGTERM) and waits for it to exit; nothing when it is gone or never started. */
export async function stopIfRunning(daemon: Daemon | undefined): Promise<void> {
  if (daemon?.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  }
}
