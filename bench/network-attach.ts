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
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DOCKER,
  dockerSkipReason,
  type Logged,
  removeDockerContainers,
  startDockerd,
  startLogged,
  stop,
  stopDockerd,
  waitPing,
} from './lib/dockerd.js';
import { median, run, timeIt } from './lib/util.js';

const BACKENDS = ['native', 'cni'] as const;

export async function attachBench(hullEntry: string, iterations: number, asJson: boolean): Promise<void> {
  const dockerWhy = dockerSkipReason();
  const work = mkdtempSync(join(tmpdir(), 'hull-bench-attach-'));
  const cfg = join(work, 'cfg');
  const env = (b: string) => ({ ...process.env, HULL_NETWORK_BACKEND: b });
  const cliRoot = (b: string) => join(work, `cli-${b}`);
  const dRoot = (b: string) => join(work, `daemon-${b}`);
  const dSock = (b: string) => join(work, `hull-${b}.sock`);
  const dockerSock = join(work, 'docker.sock');
  const dEnv = (sock: string) => ({ ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: cfg });
  const daemons: Logged[] = [];
  let dockerD: Logged | undefined;
  const hullRun = (root: string) => [hullEntry, '--root', root, 'run', '--rm', 'busybox', 'true'];
  const runArgs = ['run', '--rm', 'busybox', 'true'];
  try {
    for (const b of BACKENDS) {
      run(process.execPath, hullRun(cliRoot(b)), env(b));
      run(process.execPath, [hullEntry, '--root', dRoot(b), 'run', '--rm', '--network', 'none', 'busybox', 'true']);
      const d = startLogged(process.execPath, [hullEntry, '--root', dRoot(b), 'daemon', '--socket', dSock(b)], env(b));
      daemons.push(d);
      await waitPing(dSock(b), `hull daemon (${b})`, d.log, 60_000);
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
      dockerD = startDockerd(work, dockerSock);
      await waitPing(dockerSock, 'dockerd', dockerD.log, 60_000);
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
      removeDockerContainers(dEnv(dockerSock));
      await stopDockerd(dockerD, work);
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
