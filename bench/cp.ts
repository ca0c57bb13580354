/**
 * Benchmark: `hull cp` into and out of a running container against `cp` on the host, both on the same filesystem
 * (the bench root's): a 1 GiB file, and a tree of many small files (2,000 files of 4 KiB in 20 directories). Each
 * round runs, alternating, host cp in, hull cp in, host cp out, hull cp out; the copies are removed (and the page
 * cache dropped of nothing: both sides read the same warm source) between rounds. Medians and hull/host ratios.
 * `hull cp` goes through a tar stream (docker's archive format: out it tars the container's file, in it extracts
 * into a scratch directory and merges into the root), so it pays for the tar, the extraction and Node.js's start.
 *
 *   node --import tsx bench/cp.ts [--runs N] [--mib N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { hullOn, median } from './lib/util.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) || dflt : dflt;
};
const runs = opt('--runs', 3);
const mib = opt('--mib', 1024);
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');

const root = mkdtempSync(join(tmpdir(), 'hull-bench-cp-'));
const hull = hullOn(hullEntry, root);
const work = join(root, 'work');

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

export interface CpFigure {
  what: string;
  direction: 'in' | 'out';
  /** median milliseconds */
  host: number;
  hull: number;
  /** hull / host: 1 is as fast as cp, 2 twice the time */
  ratio: number;
}

let ctr = '';
try {
  mkdirSync(work);
  const big = join(work, 'big');
  sh('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', `count=${mib}`, 'status=none']);
  const tree = join(work, 'tree');
  const block = Buffer.alloc(4096, 'x');
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), block);
  }
  ctr = hull('run', '-d', '--network', 'none', 'busybox', 'sleep', '1d').trim();
  const items = [
    { what: `a ${mib} MiB file`, src: big, name: 'big', flags: [] as string[] },
    { what: 'a tree of 2,000 files of 4 KiB', src: tree, name: 'tree', flags: ['-a'] },
  ];
  const figures: CpFigure[] = [];
  for (const it of items) {
    const t = { hostIn: [] as number[], hullIn: [] as number[], hostOut: [] as number[], hullOut: [] as number[] };
    // the container's copy is also the source of the copy out, so the container side is made once per round
    for (let i = 0; i < runs; i++) {
      const hostDst = join(work, `host-${it.name}`);
      t.hostIn.push(time(() => sh('cp', [...it.flags, '-r', it.src, hostDst])));
      t.hullIn.push(time(() => hull('cp', it.src, `${ctr}:/${it.name}`)));
      const hostOut = join(work, `host-out-${it.name}`);
      t.hostOut.push(time(() => sh('cp', [...it.flags, '-r', hostDst, hostOut])));
      const hullOut = join(work, `hull-out-${it.name}`);
      t.hullOut.push(time(() => hull('cp', `${ctr}:/${it.name}`, hullOut)));
      for (const p of [hostDst, hostOut, hullOut]) rmSync(p, { recursive: true, force: true });
      hull('exec', ctr, 'rm', '-rf', `/${it.name}`);
    }
    for (const [direction, h, c] of [
      ['in', t.hostIn, t.hullIn],
      ['out', t.hostOut, t.hullOut],
    ] as const) {
      const hm = median(h);
      const cm = median(c);
      figures.push({ what: it.what, direction, host: hm, hull: cm, ratio: cm / hm });
    }
  }
  // the CLI's own cost, for scale: a hull command that copies nothing
  const cli = median(Array.from({ length: runs }, () => time(() => hull('ps', '-q'))));
  if (asJson) console.log(JSON.stringify({ cp: figures, cliMs: cli }, null, 2));
  else {
    console.log(`hull cp vs cp on the host, same filesystem (median of ${runs}; ms)`);
    console.log('| what | direction | cp | hull cp | ratio |\n|---|---|---|---|---|');
    for (const f of figures)
      console.log(
        `| ${f.what} | ${f.direction} | ${f.host.toFixed(0)} | ${f.hull.toFixed(0)} | ${f.ratio.toFixed(2)}× |`,
      );
    console.log(`\na hull command that copies nothing (hull ps -q): ${cli.toFixed(0)} ms`);
  }
} finally {
  if (ctr) spawnSync(process.execPath, [hullEntry, '--root', root, 'rm', '-f', ctr]);
  if (!spawnSync('grep', ['-q', root, '/proc/self/mountinfo']).status) console.error(`left mounted under ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
