/**
 * dockerd 20.10 for the benchmarks that compare against it: started on its own --data-root/--exec-root and socket
 * under a work directory, and afterwards stopped with what it leaves on the host removed (docker0, its iptables
 * rules and chains, its /docker cgroups, the mounts under its data root).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

export const DOCKER = '/usr/bin/docker';

/** Why dockerd cannot be compared against on this host, or '' when it can. */
export function dockerSkipReason(): string {
  const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  return !existsSync(DOCKER)
    ? "no /usr/bin/docker (Debian's docker.io)"
    : !have('dockerd')
      ? 'no dockerd'
      : existsSync('/sys/class/net/docker0')
        ? 'docker0 exists: another dockerd runs on this host'
        : '';
}

export function ping(socket: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: socket, path: '/_ping', agent: false }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('error', () => res(false));
    req.end();
  });
}

/** Waits until a daemon (dockerd or hull's) answers /_ping on its socket. */
export async function waitPing(socket: string, what: string, log: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ping(socket))) {
    if (Date.now() > deadline) throw new Error(`${what} did not answer /_ping: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Logged {
  child: ChildProcess;
  /** The last 8000 characters of its stderr. */
  log: () => string;
}

/** A daemon in the background, its stderr kept for error messages. */
export function startLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Logged {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log = (log + s).slice(-8000);
  });
  return { child, log: () => log };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** dockerd with its data, exec root and pidfile under work, serving socket (overlay2). */
export function startDockerd(work: string, socket: string): Logged {
  return startLogged('dockerd', [
    '--data-root',
    join(work, 'docker-data'),
    '--exec-root',
    join(work, 'docker-exec'),
    '--pidfile',
    join(work, 'docker.pid'),
    '-H',
    `unix://${socket}`,
    '--storage-driver',
    'overlay2',
  ]);
}

/** Removes every container of the dockerd that env's DOCKER_HOST names. */
export function removeDockerContainers(env: NodeJS.ProcessEnv): void {
  const ids = spawnSync(DOCKER, ['ps', '-aq'], { env, encoding: 'utf8' }).stdout.split('\n');
  if (ids.some(Boolean)) spawnSync(DOCKER, ['rm', '-f', ...ids.filter(Boolean)], { env });
}

/** What dockerd leaves behind when it stops: docker0, its iptables rules and chains, /docker cgroups. */
export function cleanDockerHost(): void {
  spawnSync('ip', ['link', 'del', 'docker0']);
  for (const table of ['filter', 'nat']) {
    const lines = spawnSync('iptables-save', ['-t', table], { encoding: 'utf8' }).stdout.split('\n');
    for (const l of lines.filter((x) => x.startsWith('-A ') && /DOCKER|docker0/.test(x)).reverse()) {
      if (/^-A DOCKER/.test(l)) continue; // goes with its chain
      spawnSync('sh', ['-c', `iptables -t ${table} -D ${l.slice(3)}`]);
    }
    const chains = lines.filter((x) => /^:DOCKER/.test(x)).map((x) => x.slice(1).split(' ')[0]!);
    for (const c of chains) spawnSync('iptables', ['-t', table, '-F', c]);
    for (const c of chains) spawnSync('iptables', ['-t', table, '-X', c]);
  }
  for (const base of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', base, 'docker');
    if (!existsSync(d)) continue;
    const walk = (p: string) => {
      for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) walk(join(p, e.name));
      try {
        rmdirSync(p);
      } catch {
        /* busy or gone */
      }
    };
    walk(d);
  }
}

/** Stops a dockerd from startDockerd(work, ...) and removes what it leaves behind. */
export async function stopDockerd(d: Logged, work: string): Promise<void> {
  await stop(d.child);
  cleanDockerHost();
  spawnSync('umount', ['-R', join(work, 'docker-data')]);
}
