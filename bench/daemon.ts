/**
 * Benchmark: the same docker CLI (Debian's docker.io 20.10, /usr/bin/docker) against `hull daemon` and against
 * dockerd 20.10, each on its own private root and socket, alternating in one run:
 *   - `docker run --rm busybox true` (both on their default bridge network)
 *   - `hull run --rm busybox true` (hull's CLI, default network) on a root no daemon serves, and on the daemon's root
 *     (where the daemon keeps the default bridge and its DNS server up between instances)
 *   - `docker ps -a` with 100 created containers (`--network none`, not started)
 *   - API overhead: `GET /_ping` and `GET /containers/json?all=1` (100 containers), p50 and p99, one connection per
 *     request (as the CLI does)
 * dockerd gets its own --data-root/--exec-root and busybox from `hull save --format docker-archive`; afterwards
 * docker0, dockerd's iptables rules and chains and its /docker cgroups are removed. Skips (exit 0, saying why)
 * without dockerd or the docker CLI, or when docker0 already exists (another dockerd runs).
 *
 *   node --import tsx bench/daemon.ts [--iterations N] [--requests N] [--compare DIST] [--json]
 *
 * --compare DIST: also time `docker run --rm` through a daemon of another build (DIST, its dist/hull.mjs) on its own
 * root, in the same alternation (e.g. the build before a change).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
import { median, percentile, run, timeIt } from './lib/util.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => Number(argv[argv.indexOf(name) + 1] || 0) || dflt;
const iterations = argv.includes('--iterations') ? arg('--iterations', 10) : 10;
const requests = argv.includes('--requests') ? arg('--requests', 200) : 200;
const asJson = argv.includes('--json');
const compareEntry = argv.includes('--compare') ? resolve(argv[argv.indexOf('--compare') + 1]!) : undefined;
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');

const why = dockerSkipReason();
if (why) {
  console.log(`bench/daemon.ts skipped: ${why}`);
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'hull-bench-daemon-'));
const hullRoot = join(work, 'hull-root');
const hullSock = join(work, 'hull.sock');
const dockerSock = join(work, 'docker.sock');
const otherRoot = join(work, 'other-root');
const cliRoot = join(work, 'cli-root');
const otherSock = join(work, 'other.sock');

function get(socket: string, path: string): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const req = request({ socketPath: socket, path, agent: false }, (r) => {
      r.resume();
      r.on('end', () => {
        if (r.statusCode !== 200) rej(new Error(`${path}: ${r.statusCode}`));
        else res(Number(process.hrtime.bigint() - t0) / 1e6);
      });
    });
    req.on('error', rej);
    req.end();
  });
}

const hullEnv = { ...process.env, DOCKER_HOST: `unix://${hullSock}`, DOCKER_CONFIG: join(work, 'cfg') };
const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${dockerSock}`, DOCKER_CONFIG: join(work, 'cfg') };
const otherEnv = { ...process.env, DOCKER_HOST: `unix://${otherSock}`, DOCKER_CONFIG: join(work, 'cfg') };
const docker = (env: NodeJS.ProcessEnv, ...a: string[]) => run(DOCKER, a, env);

let hullD: Logged | undefined;
let dockerD: Logged | undefined;
let otherD: Logged | undefined;
try {
  // busybox in hull's root (built on first use), and the same image for dockerd
  run(process.execPath, [hullEntry, '--root', hullRoot, 'run', '--rm', '--network', 'none', 'busybox', 'true']);
  const tar = join(work, 'busybox.tar');
  run(process.execPath, [hullEntry, '--root', hullRoot, 'save', '--format', 'docker-archive', '-o', tar, 'busybox']);

  hullD = startLogged(process.execPath, [hullEntry, '--root', hullRoot, 'daemon', '--socket', hullSock]);
  dockerD = startDockerd(work, dockerSock);
  if (compareEntry) {
    run(process.execPath, [compareEntry, '--root', otherRoot, 'run', '--rm', '--network', 'none', 'busybox', 'true']);
    otherD = startLogged(process.execPath, [compareEntry, '--root', otherRoot, 'daemon', '--socket', otherSock]);
    await waitPing(otherSock, 'the other hull daemon', otherD.log);
  }
  await waitPing(hullSock, 'hull daemon', hullD.log);
  await waitPing(dockerSock, 'dockerd', dockerD.log);
  docker(dockerEnv, 'load', '-i', tar);

  // docker run --rm busybox true, one warm-up each
  const runArgs = ['run', '--rm', 'busybox', 'true'];
  docker(hullEnv, ...runArgs);
  docker(dockerEnv, ...runArgs);
  if (otherD) docker(otherEnv, ...runArgs);
  const hullRun = (r: string) => [hullEntry, '--root', r, 'run', '--rm', 'busybox', 'true'];
  run(process.execPath, hullRun(cliRoot));
  const runs = {
    hull: [] as number[],
    docker: [] as number[],
    other: [] as number[],
    cliAlone: [] as number[],
    cliDaemonRoot: [] as number[],
  };
  for (let i = 0; i < iterations; i++) {
    runs.cliAlone.push(timeIt(process.execPath, hullRun(cliRoot), process.env));
    runs.cliDaemonRoot.push(timeIt(process.execPath, hullRun(hullRoot), process.env));
    if (otherD) runs.other.push(timeIt(DOCKER, runArgs, otherEnv));
    runs.hull.push(timeIt(DOCKER, runArgs, hullEnv));
    runs.docker.push(timeIt(DOCKER, runArgs, dockerEnv));
  }

  // 100 created containers on each
  for (let i = 0; i < 100; i++) {
    docker(hullEnv, 'create', '--network', 'none', '--name', `bench-ps-${i}`, 'busybox', 'true');
    docker(dockerEnv, 'create', '--network', 'none', '--name', `bench-ps-${i}`, 'busybox', 'true');
  }
  const ps = { hull: [] as number[], docker: [] as number[] };
  for (let i = 0; i < iterations; i++) {
    ps.hull.push(timeIt(DOCKER, ['ps', '-a'], hullEnv));
    ps.docker.push(timeIt(DOCKER, ['ps', '-a'], dockerEnv));
  }

  // API overhead, one connection per request
  const api = {
    hullPing: [] as number[],
    dockerPing: [] as number[],
    hullList: [] as number[],
    dockerList: [] as number[],
  };
  for (let i = 0; i < requests; i++) {
    api.hullPing.push(await get(hullSock, '/_ping'));
    api.dockerPing.push(await get(dockerSock, '/_ping'));
    api.hullList.push(await get(hullSock, '/v1.41/containers/json?all=1'));
    api.dockerList.push(await get(dockerSock, '/v1.41/containers/json?all=1'));
  }

  const r1 = (v: number) => Math.round(v * 10) / 10;
  const summary = {
    iterations,
    requests,
    run_rm_ms: { hull: r1(median(runs.hull)), dockerd: r1(median(runs.docker)) },
    run_rm_ratio: Math.round((median(runs.hull) / median(runs.docker)) * 100) / 100,
    hull_cli_run_rm_ms: { alone: r1(median(runs.cliAlone)), daemon_root: r1(median(runs.cliDaemonRoot)) },
    hull_cli_ratio: Math.round((median(runs.cliAlone) / median(runs.docker)) * 100) / 100,
    ...(otherD ? { run_rm_compare_ms: r1(median(runs.other)) } : {}),
    ps_100_ms: { hull: r1(median(ps.hull)), dockerd: r1(median(ps.docker)) },
    ps_100_ratio: Math.round((median(ps.hull) / median(ps.docker)) * 100) / 100,
    api_ms: Object.fromEntries(
      Object.entries(api).map(([k, v]) => [k, { p50: r1(percentile(v, 50)), p99: r1(percentile(v, 99)) }]),
    ),
  };
  if (asJson) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else {
    const f = (v: number) => `${v.toFixed(1)} ms`;
    console.log(
      `docker CLI 20.10 against hull daemon and dockerd 20.10, ${iterations} alternating iterations (medians)`,
    );
    console.log(
      `  docker run --rm busybox true   hull ${f(median(runs.hull))}   dockerd ${f(median(runs.docker))}   ${summary.run_rm_ratio}x`,
    );
    if (otherD)
      console.log(
        `  docker run --rm busybox true   through ${compareEntry}: ${f(median(runs.other))}   ${Math.round((median(runs.other) / median(runs.docker)) * 100) / 100}x`,
      );
    console.log(
      `  hull run --rm busybox true     no daemon ${f(median(runs.cliAlone))} (${summary.hull_cli_ratio}x dockerd's docker run)   on the daemon's root ${f(median(runs.cliDaemonRoot))}`,
    );
    console.log(
      `  docker ps -a (100 containers)  hull ${f(median(ps.hull))}   dockerd ${f(median(ps.docker))}   ${summary.ps_100_ratio}x`,
    );
    console.log(`API overhead, ${requests} requests each, one connection per request (p50 / p99)`);
    const a = summary.api_ms as Record<string, { p50: number; p99: number }>;
    console.log(
      `  GET /_ping                     hull ${a.hullPing!.p50} / ${a.hullPing!.p99} ms   dockerd ${a.dockerPing!.p50} / ${a.dockerPing!.p99} ms`,
    );
    console.log(
      `  GET /containers/json?all=1     hull ${a.hullList!.p50} / ${a.hullList!.p99} ms   dockerd ${a.dockerList!.p50} / ${a.dockerList!.p99} ms`,
    );
  }
} finally {
  if (dockerD) {
    removeDockerContainers(dockerEnv);
    await stopDockerd(dockerD, work);
  }
  if (hullD) await stop(hullD.child);
  if (otherD) await stop(otherD.child);
  const ids = spawnSync(process.execPath, [hullEntry, '--root', hullRoot, 'ps', '-aq', '--no-trunc'], {
    encoding: 'utf8',
  }).stdout.split('\n');
  if (ids.some(Boolean))
    spawnSync(process.execPath, [hullEntry, '--root', hullRoot, 'rm', '-f', ...ids.filter(Boolean)]);
  rmSync(work, { recursive: true, force: true });
}
