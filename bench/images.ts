/**
 * Image benchmarks, each in one run:
 *  1. `hull pull` against `skopeo copy docker://… oci:DIR` of the same multi-layer image (about 120 MiB) from the
 *     same local registry (Debian's docker-registry on 127.0.0.1), alternating, into fresh destinations.
 *  2. A fully cached rebuild of a 10-step Containerfile.
 *
 *   node --import tsx bench/images.ts [--iterations N]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { startDockerRegistry } from '../test/helpers/registry.js';
import { median } from './lib/util.js';

const argv = process.argv.slice(2);
const iterations = Number(argv[argv.indexOf('--iterations') + 1] || 0) || 5;
const hullEntry = join(resolve(import.meta.dirname, '..'), 'dist/hull.mjs');
const work = mkdtempSync(join(tmpdir(), 'hull-bench-img-'));
const root = join(work, 'root');

function run(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}
const hull = (r: string, ...a: string[]) => run(process.execPath, [hullEntry, '--root', r, ...a]);
const registry = await startDockerRegistry();
try {
  // A four-layer image of about 120 MiB (random data: compression would not help either side).
  const ctx = join(work, 'big');
  spawnSync('mkdir', ['-p', ctx]);
  writeFileSync(
    join(ctx, 'Containerfile'),
    ['FROM busybox', ...[1, 2, 3].map((i) => `RUN dd if=/dev/urandom of=/layer${i} bs=1M count=40 2>/dev/null`)].join(
      '\n',
    ) + '\n',
  );
  hull(root, 'build', '-q', '-t', 'big:1', ctx);
  const ref = `${registry.host}/bench/big:1`;
  hull(root, 'push', '-q', 'big:1', ref);
  const size = 3 * 40 * 1024 * 1024;

  const pulls: number[] = [];
  const copies: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const r = join(work, `pull-${i}`);
    pulls.push(hull(r, 'pull', '-q', ref));
    rmSync(r, { recursive: true, force: true });
    const d = join(work, `oci-${i}`);
    copies.push(run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${d}:big`]));
    rmSync(d, { recursive: true, force: true });
  }
  const mibs = (ms: number) => size / 1024 / 1024 / (ms / 1000);

  // A 10-step Containerfile, built once, then rebuilt from the cache.
  const app = join(work, 'app');
  spawnSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'hello.txt'), 'hello\n');
  writeFileSync(
    join(app, 'Containerfile'),
    [
      'FROM busybox',
      'ARG VERSION=1',
      'ENV APP_HOME=/app',
      'WORKDIR /app',
      'COPY hello.txt .',
      'RUN echo built > /app/built.txt',
      'LABEL org.example.version=$VERSION',
      'EXPOSE 8080',
      'USER nobody',
      'CMD ["cat", "/app/hello.txt"]',
    ].join('\n') + '\n',
  );
  const first = hull(root, 'build', '-q', '-t', 'app:1', app);
  const rebuilds: number[] = [];
  for (let i = 0; i < iterations; i++) rebuilds.push(hull(root, 'build', '-q', '-t', 'app:1', app));

  const p = median(pulls);
  const c = median(copies);
  console.log(
    `pull of a 4-layer image (${(size / 1024 / 1024).toFixed(0)} MiB of layers) from a local registry, ${iterations} alternating runs (medians)`,
  );
  console.log(`  hull pull                      ${p.toFixed(0)} ms   ${mibs(p).toFixed(0)} MiB/s`);
  console.log(`  skopeo copy docker:// oci:     ${c.toFixed(0)} ms   ${mibs(c).toFixed(0)} MiB/s`);
  console.log(`  hull / skopeo throughput       ${(mibs(p) / mibs(c)).toFixed(2)}x`);
  console.log(
    `10-step Containerfile: first build ${first.toFixed(0)} ms, cached rebuild ${median(rebuilds).toFixed(0)} ms (median of ${iterations})`,
  );
} finally {
  await registry.stop();
  spawnSync(process.execPath, [hullEntry, '--root', root, 'system', 'info'], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
