/**
 * Benchmark: volume I/O and snapshots. fio (Debian's) sequential and random reads and writes in a container's
 * volume against the same filesystem on the host (a btrfs pool on a loop image under the bench root: the container
 * writes into a volume of the pool, the host into a directory beside it), and the time of a btrfs snapshot of a
 * 100 MiB and a 1 GiB volume (constant: a snapshot shares the blocks). The container runs the host's fio (its
 * /usr bound read-only into busybox), so both sides run the same binary. Runs alternate host/container.
 *
 *   node --import tsx bench/storage.ts [--seconds N] [--runs N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { HOST_BINS, hullOn, median } from './lib/util.js';

const argv = process.argv.slice(2);
const seconds = Number(argv[argv.indexOf('--seconds') + 1] || 0) || 5;
const runs = Number(argv[argv.indexOf('--runs') + 1] || 0) || 3;
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');
if (spawnSync('fio', ['--version']).status !== 0) throw new Error('fio is missing: run scripts/setup.sh');
if (spawnSync('mkfs.btrfs', ['--version']).status !== 0)
  throw new Error('btrfs-progs is missing: run scripts/setup.sh');

const root = mkdtempSync(join(tmpdir(), 'hull-bench-storage-'));
const hull = hullOn(hullEntry, root);

const PATTERNS = [
  { name: 'sequential write', rw: 'write', bs: '1M' },
  { name: 'sequential read', rw: 'read', bs: '1M' },
  { name: 'random write', rw: 'randwrite', bs: '4k' },
  { name: 'random read', rw: 'randread', bs: '4k' },
] as const;

function fioArgs(dir: string, rw: string, bs: string): string[] {
  return [
    '--name=bench',
    `--directory=${dir}`,
    `--rw=${rw}`,
    `--bs=${bs}`,
    '--size=128M',
    '--ioengine=psync',
    '--direct=1',
    '--time_based',
    `--runtime=${seconds}`,
    '--output-format=json',
  ];
}

/** MiB/s for sequential patterns, IOPS for random ones. */
function figure(json: string, rw: string): number {
  const j = JSON.parse(json.slice(json.indexOf('{'))) as {
    jobs: { read: { bw: number; iops: number }; write: { bw: number; iops: number } }[];
  };
  const side = rw.includes('read') ? j.jobs[0]!.read : j.jobs[0]!.write;
  return rw.startsWith('rand') ? side.iops : side.bw / 1024;
}

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

try {
  hull('storage', 'pool', 'create', 'bench', '--driver', 'btrfs', '--size', '4g');
  hull('volume', 'create', '--pool', 'bench', 'fio');
  const mnt = join(root, 'storage', 'mnt', 'bench');
  const hostDir = join(mnt, 'host');
  mkdirSync(hostDir);
  const io: { name: string; unit: string; host: number; container: number; ratio: number }[] = [];
  for (const p of PATTERNS) {
    const host: number[] = [];
    const ctr: number[] = [];
    for (let i = 0; i < runs; i++) {
      const h = spawnSync('fio', fioArgs(hostDir, p.rw, p.bs), { encoding: 'utf8' });
      if (h.status !== 0) throw new Error(`fio on the host failed: ${h.stderr}`);
      host.push(figure(h.stdout, p.rw));
      const c = hull(
        'run',
        '--rm',
        '--network',
        'none',
        ...HOST_BINS,
        '-v',
        'fio:/d',
        'busybox',
        'fio',
        ...fioArgs('/d', p.rw, p.bs),
      );
      ctr.push(figure(c, p.rw));
    }
    const hm = median(host);
    const cm = median(ctr);
    io.push({
      name: p.name,
      unit: p.rw.startsWith('rand') ? 'IOPS' : 'MiB/s',
      host: hm,
      container: cm,
      ratio: cm / hm,
    });
  }
  // snapshots: a 100 MiB and a 1 GiB volume, hull's command and btrfs's own
  const snaps: { size: string; hull: number; btrfs: number; cli: number }[] = [];
  for (const [name, mib] of [
    ['s100m', 100],
    ['s1g', 1024],
  ] as const) {
    hull('volume', 'create', '--pool', 'bench', name);
    const dir = join(mnt, 'volumes', name);
    spawnSync('dd', ['if=/dev/urandom', `of=${join(dir, 'data')}`, 'bs=1M', `count=${mib}`, 'status=none']);
    spawnSync('sync');
    const h: number[] = [];
    const b: number[] = [];
    // snapshots are taken first and removed after: a btrfs subvolume delete is finished by the cleaner thread in
    // the background, which a snapshot taken meanwhile would wait for
    for (let i = 0; i < runs; i++) {
      spawnSync('sync');
      h.push(time(() => hull('volume', 'snapshot', 'create', name, `h${i}`)));
      spawnSync('sync');
      b.push(time(() => spawnSync('btrfs', ['-q', 'subvolume', 'snapshot', '-r', dir, join(mnt, `raw-${name}-${i}`)])));
    }
    for (let i = 0; i < runs; i++) {
      spawnSync('btrfs', ['-q', 'subvolume', 'delete', join(mnt, `raw-${name}-${i}`)]);
      hull('volume', 'snapshot', 'rm', name, `h${i}`);
    }
    const cli: number[] = [];
    for (let i = 0; i < runs; i++) cli.push(time(() => hull('volume', 'snapshot', 'ls', name)));
    snaps.push({ size: `${mib} MiB`, hull: median(h), btrfs: median(b), cli: median(cli) });
    hull('volume', 'rm', name);
  }
  if (asJson) console.log(JSON.stringify({ io, snaps }, null, 2));
  else {
    console.log(
      `fio in a container's volume vs the host, same btrfs pool (median of ${runs}, ${seconds} s each, O_DIRECT)`,
    );
    console.log('| pattern | host | container | ratio |\n|---|---|---|---|');
    for (const r of io)
      console.log(
        `| ${r.name} (${r.unit}) | ${r.host.toFixed(0)} | ${r.container.toFixed(0)} | ${r.ratio.toFixed(2)}× |`,
      );
    console.log('\nbtrfs snapshot of a volume (median ms)');
    console.log(
      "| volume | hull volume snapshot create | hull volume snapshot ls (the CLI's own cost) | btrfs subvolume snapshot -r |\n|---|---|---|---|",
    );
    for (const s of snaps)
      console.log(`| ${s.size} | ${s.hull.toFixed(0)} ms | ${s.cli.toFixed(0)} ms | ${s.btrfs.toFixed(1)} ms |`);
  }
} finally {
  spawnSync(process.execPath, [hullEntry, '--root', root, 'volume', 'rm', 'fio']);
  spawnSync(process.execPath, [hullEntry, '--root', root, 'storage', 'pool', 'rm', 'bench']);
  if (!spawnSync('grep', ['-q', root, '/proc/self/mountinfo']).status) console.error(`left mounted under ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
