/**
 * Benchmark: a fully cached rebuild of a 15-step, multi-stage Containerfile, `hull build` against `docker build`
 * (DOCKER_BUILDKIT=0, the classic builder of dockerd 20.10), alternating in one run. dockerd is started here with its
 * own --data-root/--exec-root and socket (as bench/daemon.ts does) and cleaned up after; it gets busybox from
 * `hull save --format docker-archive`. The context: the Containerfile, a small source tree the COPY steps use
 * (50 files) and a larger one they do not (500 files, as docs or test data beside the sources).
 * Skips (exit 0, saying why) without dockerd or the docker CLI, or when docker0 already exists.
 *
 *   node --import tsx bench/rebuild.ts [--iterations N] [--json] [--hull-only] [--small] [--compare DIST]
 *
 * --hull-only: time `hull build` alone (no dockerd), e.g. while profiling with HULL_TRACE=1.
 * --small: the context without the 500 unused files (docker's CLI sends the whole context on every build).
 * --compare DIST: also time the same rebuild by another build of hull (DIST, its dist/hull.mjs), on the same root,
 * in the same alternation (e.g. the build before a change).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const argv = process.argv.slice(2);
const iterations = argv.includes('--iterations') ? Number(argv[argv.indexOf('--iterations') + 1]) || 10 : 10;
const asJson = argv.includes('--json');
const hullOnly = argv.includes('--hull-only');
const small = argv.includes('--small');
const compareEntry = argv.includes('--compare') ? resolve(argv[argv.indexOf('--compare') + 1]!) : undefined;
const DOCKER = '/usr/bin/docker';
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = hullOnly
  ? ''
  : !existsSync(DOCKER)
    ? "no /usr/bin/docker (Debian's docker.io)"
    : !have('dockerd')
      ? 'no dockerd'
      : existsSync('/sys/class/net/docker0')
        ? 'docker0 exists: another dockerd runs on this host'
        : '';
if (why) {
  console.log(`bench/rebuild.ts skipped: ${why}`);
  process.exit(0);
}

const CONTAINERFILE = `FROM busybox AS build
WORKDIR /src
ENV STAGE=build
COPY config.txt ./
RUN cat config.txt > /tmp/config && echo configured >> /tmp/config
COPY src/ ./src/
RUN ls src | wc -l > /tmp/count
ARG VERSION=1
RUN echo "version $VERSION" > /tmp/version && mkdir -p /out && cp /tmp/config /tmp/count /tmp/version /out/
FROM busybox
LABEL org.example.bench=rebuild
COPY --from=build /out /app
ENV APP=/app
WORKDIR /app
CMD ["cat", "/app/version"]
`;

const work = mkdtempSync(join(tmpdir(), 'hull-bench-rebuild-'));
const hullRoot = join(work, 'hull-root');
const ctx = join(work, 'context');
const dockerSock = join(work, 'docker.sock');

function makeContext(): void {
  mkdirSync(join(ctx, 'src'), { recursive: true });
  mkdirSync(join(ctx, 'docs'), { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), CONTAINERFILE);
  writeFileSync(join(ctx, 'config.txt'), 'setting=1\n');
  for (let i = 0; i < 50; i++) writeFileSync(join(ctx, 'src', `f${i}.txt`), `source ${i}\n`.repeat(20));
  if (!small) for (let i = 0; i < 500; i++) writeFileSync(join(ctx, 'docs', `d${i}.md`), `doc ${i}\n`.repeat(50));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const out = run(cmd, args, env);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, out };
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

async function waitPing(socket: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ping(socket))) {
    if (Date.now() > deadline) throw new Error(`dockerd did not answer /_ping: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What dockerd leaves behind when it stops: docker0, its iptables rules and chains, /docker cgroups. */
function cleanDockerHost(): void {
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

let dockerD: ChildProcess | undefined;
const dockerEnv = {
  ...process.env,
  DOCKER_HOST: `unix://${dockerSock}`,
  DOCKER_CONFIG: join(work, 'cfg'),
  DOCKER_BUILDKIT: '0',
};
const hullBuild = [hullEntry, '--root', hullRoot, 'build', '-t', 'bench-rebuild:1', ctx];
const otherBuild = compareEntry ? [compareEntry, ...hullBuild.slice(1)] : undefined;
const dockerBuild = ['build', '-f', join(ctx, 'Containerfile'), '-t', 'bench-rebuild:1', ctx];
try {
  makeContext();
  // busybox in hull's root (built on first use); the first build fills hull's cache
  run(process.execPath, [hullEntry, '--root', hullRoot, 'run', '--rm', '--network', 'none', 'busybox', 'true']);
  run(process.execPath, hullBuild);
  if (otherBuild) run(process.execPath, otherBuild);
  if (!hullOnly) {
    const tar = join(work, 'busybox.tar');
    run(process.execPath, [hullEntry, '--root', hullRoot, 'save', '--format', 'docker-archive', '-o', tar, 'busybox']);
    let log = '';
    dockerD = spawn(
      'dockerd',
      [
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
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    dockerD.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log = (log + s).slice(-8000);
    });
    await waitPing(dockerSock, () => log);
    run(DOCKER, ['load', '-i', tar], dockerEnv);
    run(DOCKER, dockerBuild, dockerEnv);
  }

  const times = { hull: [] as number[], docker: [] as number[], other: [] as number[] };
  for (let i = 0; i < iterations; i++) {
    if (otherBuild) times.other.push(timeIt(process.execPath, otherBuild, process.env).ms);
    const h = timeIt(process.execPath, hullBuild, process.env);
    if (/STEP \d+\/\d+: RUN/.test(h.out) && !/Using cache/.test(h.out))
      throw new Error(`hull's rebuild was not cached:\n${h.out}`);
    times.hull.push(h.ms);
    if (!hullOnly) {
      const d = timeIt(DOCKER, dockerBuild, dockerEnv);
      if (!/Using cache/.test(d.out)) throw new Error(`docker's rebuild was not cached:\n${d.out}`);
      times.docker.push(d.ms);
    }
  }
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const summary = {
    iterations,
    steps: 15,
    cached_rebuild_ms: { hull: r1(median(times.hull)), ...(hullOnly ? {} : { dockerd: r1(median(times.docker)) }) },
    ...(hullOnly ? {} : { ratio: Math.round((median(times.hull) / median(times.docker)) * 100) / 100 }),
    ...(otherBuild ? { compare_ms: r1(median(times.other)) } : {}),
  };
  if (asJson) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else {
    console.log(
      `fully cached rebuild, 15 steps in 2 stages, context of ${small ? '52' : '552'} files, ${iterations} alternating iterations (medians)`,
    );
    console.log(
      `  hull build ${median(times.hull).toFixed(1)} ms` +
        (hullOnly
          ? ''
          : `   docker build (DOCKER_BUILDKIT=0, dockerd 20.10) ${median(times.docker).toFixed(1)} ms   ${summary.ratio}x`),
    );
    if (otherBuild) console.log(`  hull build of ${compareEntry} ${median(times.other).toFixed(1)} ms`);
  }
} finally {
  if (dockerD) {
    if (dockerD.exitCode === null) {
      const exited = new Promise((r) => dockerD!.once('exit', r));
      dockerD.kill('SIGTERM');
      await exited;
    }
    cleanDockerHost();
    spawnSync('umount', ['-R', join(work, 'docker-data')]);
  }
  spawnSync(process.execPath, [hullEntry, '--root', hullRoot, 'rmi', '-f', 'bench-rebuild:1']);
  rmSync(work, { recursive: true, force: true });
}
