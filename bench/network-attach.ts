/**
 * Benchmark (bench/network.ts --attach): what joining an instance to a network costs, with each of hull's network
 * backends (HULL_NETWORK_BACKEND=native|cni) against dockerd 20.10, alternating in one run (medians):
 *   - `hull run --rm busybox true` on the default network, the CLI alone (no daemon holds the root: bridge, rules
 *     and DNS are made and retired per run), one root per backend
 *   - `docker run --rm busybox true` through `hull daemon` (which keeps the bridge and DNS up), one daemon and root
 *     per backend, and through dockerd (its own --data-root/--exec-root; docker0, its rules and cgroups are removed
 *     afterwards). dockerd is skipped, saying why, when it or the docker CLI is missing or docker0 exists already.
 *
 *   node --import tsx bench/network.ts --attach [--iterations N] [--json]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DOCKER = '/usr/bin/docker';
const BACKENDS = ['native', 'cni'] as const;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  run(cmd, args, env);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function ping(socket: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: socket, path: '/_ping', agent: false }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('error', () => res(false));
    req.end();
  });
}

async function waitPing(socket: string, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await ping(socket))) {
    if (Date.now() > deadline) throw new Error(`${what} did not answer /_ping: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log = (log + s).slice(-8000);
  });
  return { child, log: () => log };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** What dockerd leaves behind when it stops: docker0, its iptables rules and chains, /docker cgroups. */
function cleanDockerHost(): void {
  spawnSync('ip', ['link', 'del', 'docker0']);
  for (const table of ['filter', 'nat']) {
    const lines = spawnSync('iptables-save', ['-t', table], { encoding: 'utf8' }).stdout.split('\n');
    for (const l of lines.filter((x) => x.startsWith('-A ') && /DOCKER|docker0/.test(x)).reverse()) {
      if (/^-A DOCKER/.test(l)) continue;
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

export async function attachBench(hullEntry: string, iterations: number, asJson: boolean): Promise<void> {
  const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  const dockerWhy = !existsSync(DOCKER)
    ? "no /usr/bin/docker (Debian's docker.io)"
    : !have('dockerd')
      ? 'no dockerd'
      : existsSync('/sys/class/net/docker0')
        ? 'docker0 exists: another dockerd runs on this host'
        : '';
  const work = mkdtempSync(join(tmpdir(), 'hull-bench-attach-'));
  const cfg = join(work, 'cfg');
  const env = (b: string) => ({ ...process.env, HULL_NETWORK_BACKEND: b });
  const cliRoot = (b: string) => join(work, `cli-${b}`);
  const dRoot = (b: string) => join(work, `daemon-${b}`);
  const dSock = (b: string) => join(work, `hull-${b}.sock`);
  const dockerSock = join(work, 'docker.sock');
  const dEnv = (sock: string) => ({ ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: cfg });
  const daemons: ReturnType<typeof startLogged>[] = [];
  let dockerD: ReturnType<typeof startLogged> | undefined;
  const hullRun = (root: string) => [hullEntry, '--root', root, 'run', '--rm', 'busybox', 'true'];
  const runArgs = ['run', '--rm', 'busybox', 'true'];
  try {
    for (const b of BACKENDS) {
      run(process.execPath, hullRun(cliRoot(b)), env(b));
      run(process.execPath, [hullEntry, '--root', dRoot(b), 'run', '--rm', '--network', 'none', 'busybox', 'true']);
      const d = startLogged(process.execPath, [hullEntry, '--root', dRoot(b), 'daemon', '--socket', dSock(b)], env(b));
      daemons.push(d);
      await waitPing(dSock(b), `hull daemon (${b})`, d.log);
      run(DOCKER, runArgs, dEnv(dSock(b)));
    }
    if (!dockerWhy) {
      const tar = join(work, 'busybox.tar');
      run(process.execPath, [
        hullEntry,
        '--root',
        dRoot('native'),
        'save',
        '--format',
        'docker-archive',
        '-o',
        tar,
        'busybox',
      ]);
      dockerD = startLogged('dockerd', [
        '--data-root',
        join(work, 'docker-data'),
        '--exec-root',
        join(work, 'docker-exec'),
        '--pidfile',
        join(work, 'docker.pid'),
        '-H',
        `unix://${dockerSock}`,
        '--storage-driver',
        'overlay2',
      ]);
      await waitPing(dockerSock, 'dockerd', dockerD.log);
      run(DOCKER, ['load', '-i', tar], dEnv(dockerSock));
      run(DOCKER, runArgs, dEnv(dockerSock));
    }
    const t: Record<string, number[]> = { dockerd: [] };
    for (const b of BACKENDS) {
      t[`cli-${b}`] = [];
      t[`daemon-${b}`] = [];
    }
    for (let i = 0; i < iterations; i++) {
      for (const b of BACKENDS) {
        t[`cli-${b}`]!.push(timeIt(process.execPath, hullRun(cliRoot(b)), env(b)));
        t[`daemon-${b}`]!.push(timeIt(DOCKER, runArgs, dEnv(dSock(b))));
      }
      if (dockerD) t.dockerd!.push(timeIt(DOCKER, runArgs, dEnv(dockerSock)));
    }
    const m = Object.fromEntries(
      Object.entries(t).map(([k, v]) => [k, v.length ? Math.round(median(v) * 10) / 10 : NaN]),
    );
    const ratio = (k: string) => (dockerD ? Math.round((m[k]! / m.dockerd!) * 100) / 100 : NaN);
    const summary = {
      iterations,
      median_ms: m,
      vs_dockerd: Object.fromEntries(
        Object.keys(m)
          .filter((k) => k !== 'dockerd')
          .map((k) => [k, ratio(k)]),
      ),
      native_vs_cni: {
        cli: Math.round((m['cli-native']! / m['cli-cni']!) * 100) / 100,
        daemon: Math.round((m['daemon-native']! / m['daemon-cni']!) * 100) / 100,
      },
      ...(dockerWhy ? { dockerd_skipped: dockerWhy } : {}),
    };
    if (asJson) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    else {
      const f = (k: string) => `${m[k]!.toFixed(1)} ms${dockerD ? ` (${ratio(k)}x dockerd)` : ''}`;
      console.log(`run --rm busybox true on the default network, ${iterations} alternating iterations (medians)`);
      console.log(`  hull run, CLI alone       native ${f('cli-native')}   cni ${f('cli-cni')}`);
      console.log(`  docker run via hull daemon native ${f('daemon-native')}   cni ${f('daemon-cni')}`);
      console.log(
        dockerD ? `  docker run via dockerd    ${m.dockerd!.toFixed(1)} ms` : `  dockerd skipped: ${dockerWhy}`,
      );
      console.log(`  native / cni: CLI ${summary.native_vs_cni.cli}x, daemon ${summary.native_vs_cni.daemon}x`);
    }
  } finally {
    if (dockerD) {
      const ids = spawnSync(DOCKER, ['ps', '-aq'], { env: dEnv(dockerSock), encoding: 'utf8' }).stdout.split('\n');
      if (ids.some(Boolean)) spawnSync(DOCKER, ['rm', '-f', ...ids.filter(Boolean)], { env: dEnv(dockerSock) });
      await stop(dockerD.child);
      cleanDockerHost();
      spawnSync('umount', ['-R', join(work, 'docker-data')]);
    }
    for (const d of daemons) await stop(d.child);
    for (const b of BACKENDS)
      for (const r of [cliRoot(b), dRoot(b)]) {
        spawnSync(process.execPath, [hullEntry, '--root', r, 'network', 'rm', 'hull'], {
          stdio: 'ignore',
          env: env(b),
        });
      }
    rmSync(work, { recursive: true, force: true });
  }
}
