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
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DOCKER, dockerSkipReason, type Logged, startDockerd, stopDockerd, waitPing } from './lib/dockerd.js';
import { median } from './lib/util.js';

const argv = process.argv.slice(2);
const iterations = argv.includes('--iterations') ? Number(argv[argv.indexOf('--iterations') + 1]) || 10 : 10;
const asJson = argv.includes('--json');
const hullOnly = argv.includes('--hull-only');
const small = argv.includes('--small');
const compareEntry = argv.includes('--compare') ? resolve(argv[argv.indexOf('--compare') + 1]!) : undefined;
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');

const why = hullOnly ? '' : dockerSkipReason();
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

let dockerD: Logged | undefined;
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
    dockerD = startDockerd(work, dockerSock);
    await waitPing(dockerSock, 'dockerd', dockerD.log);
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
  if (dockerD) await stopDockerd(dockerD, work);
  spawnSync(process.execPath, [hullEntry, '--root', hullRoot, 'rmi', '-f', 'bench-rebuild:1']);
  rmSync(work, { recursive: true, force: true });
}
