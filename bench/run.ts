/**
 * Benchmark: `hull run --rm --network none busybox true` against the raw OCI runtime's `run` on an equivalent bundle
 * (loopback only on both sides; the default network's cost is timed on its own)
 * (the same unpacked busybox layer as root, `true` as the command), alternating in one run so that both
 * see the same machine. Also hull's CLI start-up on its own. Prints medians and ratios.
 *
 *   npm run bench [-- --iterations N] [-- --json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { median } from './lib/util.js';

const argv = process.argv.slice(2);
const iterations = Number(argv[argv.indexOf('--iterations') + 1] || 0) || 20;
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');

const root = mkdtempSync(join(tmpdir(), 'hull-bench-'));
const work = mkdtempSync(join(tmpdir(), 'hull-bench-raw-'));

function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const hull = (...a: string[]) => [process.execPath, hullEntry, '--root', root, ...a] as const;

try {
  // Warm-up: builds the busybox image and unpacks its layer.
  timeIt(process.execPath, [hullEntry, '--root', root, 'run', '--rm', 'busybox', 'true']);
  const img = JSON.parse(
    spawnSync(process.execPath, [hullEntry, '--root', root, 'image', 'inspect', 'busybox'], { encoding: 'utf8' })
      .stdout,
  )[0];
  const layer = join(root, 'layers', img.Hull.Layers[0].diffId.replace('sha256:', ''));

  // An equivalent bundle for the raw runtime: its own default spec, the same root filesystem, read-only.
  const bundle = join(work, 'bundle');
  mkdirSync(bundle);
  const spec = spawnSync('runc', ['spec', '--bundle', bundle]);
  if (spec.status !== 0) throw new Error('runc spec failed');
  const cfgPath = join(bundle, 'config.json');
  const cfg = JSON.parse(spawnSync('cat', [cfgPath], { encoding: 'utf8' }).stdout);
  cfg.process.args = ['true'];
  cfg.process.terminal = false;
  cfg.root = { path: layer, readonly: true };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  // crun refuses hybrid cgroup hosts; give it the pure-v1 view hull gives it (a private mount namespace).
  const hybrid = existsSync('/sys/fs/cgroup/unified') && existsSync('/sys/fs/cgroup/memory');
  const crunRun = (id: string) =>
    hybrid
      ? ([
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            `umount -l /sys/fs/cgroup/unified && exec crun --root ${work}/crun run --bundle ${bundle} ${id}`,
          ],
        ] as const)
      : (['crun', ['--root', `${work}/crun`, 'run', '--bundle', bundle, id]] as const);

  const results: Record<string, number[]> = {
    runc: [],
    crun: [],
    hullDefault: [],
    hullRunc: [],
    hullNetwork: [],
    hullVersion: [],
    nodeBare: [],
  };
  for (let i = 0; i < iterations; i++) {
    results.runc!.push(timeIt('runc', ['--root', `${work}/runc`, 'run', '--bundle', bundle, `bench-runc-${i}`]));
    const [c, a] = crunRun(`bench-crun-${i}`);
    results.crun!.push(timeIt(c, [...a]));
    // like for like: the raw bundle has only loopback, so hull runs with --network none here; the default
    // network (a veth on a bridge through the CNI plugins, DNS) is timed on its own
    const h = hull('run', '--rm', '--network', 'none', 'busybox', 'true');
    results.hullDefault!.push(timeIt(h[0], h.slice(1) as string[]));
    const hr = hull('run', '--rm', '--network', 'none', '--runtime', 'runc', 'busybox', 'true');
    results.hullRunc!.push(timeIt(hr[0], hr.slice(1) as string[]));
    const hn = hull('run', '--rm', 'busybox', 'true');
    results.hullNetwork!.push(timeIt(hn[0], hn.slice(1) as string[]));
    results.hullVersion!.push(timeIt(process.execPath, [hullEntry, '--version']));
    results.nodeBare!.push(timeIt(process.execPath, ['-e', '0']));
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  const defaultRuntime = spawnSync(
    process.execPath,
    [hullEntry, '--root', root, 'system', 'info', '--format', 'json'],
    { encoding: 'utf8' },
  );
  const summary = {
    iterations,
    medians_ms: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    default_runtime: JSON.parse(defaultRuntime.stdout).defaultRuntime,
    ratio_hull_vs_runc: Math.round((m.hullDefault! / m.runc!) * 100) / 100,
    ratio_hull_runc_vs_runc: Math.round((m.hullRunc! / m.runc!) * 100) / 100,
    ratio_hull_vs_crun: Math.round((m.hullDefault! / m.crun!) * 100) / 100,
    cli_startup_ms: Math.round(m.hullVersion! * 10) / 10,
    node_startup_ms: Math.round(m.nodeBare! * 10) / 10,
  };
  if (asJson) {
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  } else {
    const f = (v: number) => `${v.toFixed(1)} ms`;
    console.log(`hull run --rm busybox true vs the raw runtime, ${iterations} alternating iterations (medians)`);
    console.log(`  runc run (raw bundle)                 ${f(m.runc!)}`);
    console.log(`  crun run (raw bundle, pure-v1 view)   ${f(m.crun!)}`);
    console.log(
      `  hull run --rm --network none (${summary.default_runtime})   ${f(m.hullDefault!)}   ${summary.ratio_hull_vs_runc}x runc, ${summary.ratio_hull_vs_crun}x crun`,
    );
    console.log(
      `  hull run --rm --network none --runtime runc   ${f(m.hullRunc!)}   ${summary.ratio_hull_runc_vs_runc}x runc`,
    );
    console.log(
      `  hull run --rm (default network hull)  ${f(m.hullNetwork!)}   +${(m.hullNetwork! - m.hullDefault!).toFixed(1)} ms for the network`,
    );
    console.log(`  hull --version (CLI start-up)         ${f(m.hullVersion!)}`);
    console.log(`  node -e 0 (Node.js start-up alone)    ${f(m.nodeBare!)}`);
  }
} finally {
  spawnSync(process.execPath, [
    hullEntry,
    '--root',
    root,
    'rm',
    '-f',
    ...spawnSync(process.execPath, [hullEntry, '--root', root, 'ps', '-aq', '--no-trunc'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean),
  ]);
  rmSync(root, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
