/**
 * Benchmark: TCP throughput with iperf3 between two containers on one hull network (veth → bridge → veth)
 * and from a container to a VM on the same network (veth → bridge → veth → tc redirect → tap → virtio-net),
 * against the host's loopback, and through a published port (127.0.0.1:PORT, portmap's DNAT) from the host
 * into a container. Also the latency of a name lookup through the network's DNS server (aardvark-dns).
 * Each figure is the median of a few runs, alternated so that all see the same machine. The containers run the
 * host's iperf3 (its /usr bound read-only into busybox): no image to pull, the same binary on both sides.
 *
 *   node --import tsx bench/network.ts [--seconds N] [--runs N] [--json]
 *
 * With --attach [--iterations N]: instead, the cost of joining a network, each of hull's backends (native, cni)
 * against dockerd, CLI alone and through the daemon (./network-attach.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { HOST_BINS, hullOn, median } from './lib/util.js';

const argv = process.argv.slice(2);
const seconds = Number(argv[argv.indexOf('--seconds') + 1] || 0) || 3;
const runs = Number(argv[argv.indexOf('--runs') + 1] || 0) || 3;
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build (or npm test) first');
if (argv.includes('--attach')) {
  const { attachBench } = await import('./network-attach.js');
  await attachBench(hullEntry, Number(argv[argv.indexOf('--iterations') + 1] || 0) || 10, asJson);
  process.exit(0);
}
if (spawnSync('iperf3', ['-v']).status !== 0) throw new Error('iperf3 is missing: run scripts/setup.sh');

const root = mkdtempSync(join(tmpdir(), 'hull-bench-net-'));
const SUBNET = '10.98.7.0/24';
const hull = hullOn(hullEntry, root);

/** Gbit/s received, from iperf3's JSON report. */
function gbits(json: string): number {
  const r = JSON.parse(json) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (!r.end?.sum_received) throw new Error(`iperf3 failed: ${r.error ?? json.slice(0, 200)}`);
  return r.end.sum_received.bits_per_second / 1e9;
}

/** Host loopback: server and client on 127.0.0.1. */
async function loopback(port: number): Promise<number> {
  const srv = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  try {
    const c = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], {
      encoding: 'utf8',
    });
    return gbits(c.stdout);
  } finally {
    srv.kill();
  }
}

/**
 * An image with the host's iperf3 and the libraries ldd names (VMs take no host directories here, so the binary
 * goes into the image), imported with hull import.
 */
function importIperfImage(): void {
  const tree = join(root, 'iperf-tree');
  const files = [
    '/usr/bin/iperf3',
    ...spawnSync('ldd', ['/usr/bin/iperf3'], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
      .filter((p): p is string => !!p),
  ];
  for (const f of files) {
    mkdirSync(join(tree, dirname(f)), { recursive: true });
    copyFileSync(realpathSync(f), join(tree, f));
    chmodSync(join(tree, f), 0o755);
  }
  const tar = join(root, 'iperf.tar');
  if (spawnSync('tar', ['-C', tree, '-cf', tar, '.']).status !== 0) throw new Error('tar of the iperf3 tree failed');
  hull('import', tar, 'bench-iperf:1');
}

/** Wait until `name`'s log says the iperf3 server listens (a VM boots for seconds under TCG). */
async function waitListening(name: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (hull('logs', name).includes('Server listening')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name}: iperf3 server did not start`);
}

const results = { loopback: [] as number[], bridge: [] as number[], published: [] as number[], vm: [] as number[] };
let lookupMs = NaN;
let vmAccel = '';
try {
  hull('network', 'create', 'benchnet', '--subnet', SUBNET);
  importIperfImage();
  // container ↔ VM: the server in a VM on the same network (virtio-net, tap redirected to the CNI veth)
  hull(
    'run',
    '-d',
    '--name',
    'iperf-vm',
    '--network',
    'benchnet',
    '--isolation',
    'vm',
    '--memory',
    '512m',
    'bench-iperf:1',
    '/usr/bin/iperf3',
    '-s',
    '--forceflush',
  );
  vmAccel = (JSON.parse(hull('system', 'info', '--format', 'json')) as { virtualization: { accelerator: string } })
    .virtualization.accelerator;
  // the server answers one test at a time (-s without -1): the bridge and published-port runs share it
  hull(
    'run',
    '-d',
    '--name',
    'iperf-srv',
    '--network',
    'benchnet',
    '-p',
    '127.0.0.1::5201',
    ...HOST_BINS,
    'busybox',
    '/usr/bin/iperf3',
    '-s',
  );
  const hostPort = Number(/127\.0\.0\.1:(\d+)/.exec(hull('port', 'iperf-srv'))![1]);
  await new Promise((r) => setTimeout(r, 500));
  await waitListening('iperf-vm');
  for (let i = 0; i < runs; i++) {
    results.vm.push(
      gbits(
        hull(
          'run',
          '--rm',
          '--network',
          'benchnet',
          ...HOST_BINS,
          'busybox',
          '/usr/bin/iperf3',
          '-c',
          'iperf-vm',
          '-t',
          String(seconds),
          '-J',
        ),
      ),
    );
    results.loopback.push(await loopback(25201 + i));
    results.bridge.push(
      gbits(
        hull(
          'run',
          '--rm',
          '--network',
          'benchnet',
          ...HOST_BINS,
          'busybox',
          '/usr/bin/iperf3',
          '-c',
          'iperf-srv',
          '-t',
          String(seconds),
          '-J',
        ),
      ),
    );
    const c = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(hostPort), '-t', String(seconds), '-J'], {
      encoding: 'utf8',
    });
    results.published.push(gbits(c.stdout));
  }
  // name lookups: 200 busybox nslookups in a loop, minus the same loop spawning a no-op (fork/exec cost)
  const out = hull(
    'run',
    '--rm',
    '--network',
    'benchnet',
    'busybox',
    'sh',
    '-c',
    'a=$(cut -d" " -f1 /proc/uptime); for i in $(seq 200); do nslookup iperf-srv >/dev/null; done; b=$(cut -d" " -f1 /proc/uptime); ' +
      'for i in $(seq 200); do cat /dev/null; done; c=$(cut -d" " -f1 /proc/uptime); echo "$a $b $c"',
  );
  const [a, b, c] = out.trim().split(' ').map(Number) as [number, number, number];
  lookupMs = ((b - a - (c - b)) * 1000) / 200;
} finally {
  spawnSync(process.execPath, [hullEntry, '--root', root, 'rm', '-f', 'iperf-srv', 'iperf-vm'], { stdio: 'ignore' });
  spawnSync(process.execPath, [hullEntry, '--root', root, 'network', 'rm', 'benchnet'], { stdio: 'ignore' });
  spawnSync(process.execPath, [hullEntry, '--root', root, 'network', 'rm', 'hull'], { stdio: 'ignore' });
  rmSync(root, { recursive: true, force: true });
}

const lo = median(results.loopback);
const br = median(results.bridge);
const pub = median(results.published);
const vm = median(results.vm);
const summary = {
  seconds,
  runs,
  loopbackGbits: lo,
  bridgeGbits: br,
  publishedGbits: pub,
  containerToVmGbits: vm,
  vmAccelerator: vmAccel,
  bridgeVsLoopback: br / lo,
  publishedVsLoopback: pub / lo,
  containerToVmVsLoopback: vm / lo,
  dnsLookupMs: lookupMs,
};
if (asJson) {
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
} else {
  const f = (x: number) => x.toFixed(2);
  process.stdout.write(
    [
      `TCP throughput, iperf3, ${seconds} s per run, median of ${runs}:`,
      `  host loopback (127.0.0.1)                   ${f(lo)} Gbit/s`,
      `  container -> container over a hull bridge   ${f(br)} Gbit/s   (${f(br / lo)}x loopback)`,
      `  host -> container via published port        ${f(pub)} Gbit/s   (${f(pub / lo)}x loopback)`,
      `  container -> VM (${vmAccel}, virtio-net) over the bridge ${f(vm)} Gbit/s   (${(vm / lo).toFixed(3)}x loopback)`,
      `name lookup through the network's DNS (aardvark-dns), busybox nslookup: ${lookupMs.toFixed(2)} ms`,
      '',
    ].join('\n'),
  );
}
