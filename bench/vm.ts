/**
 * Benchmarks of hull's VMs (the accelerator measured is printed first: TCG where the host has no hardware KVM):
 *  1. start to workload: `hull run --rm --isolation vm busybox true` (restored from a VM template, as by default;
 *     and with --no-template, a cold boot) against raw QEMU cold-booting the same kernel, initramfs (hull's
 *     agent as /init) and root disk, with the same command line, to the same point (the agent has run `true`
 *     and reported its exit; QEMU has quit) — alternating, medians and the ratios; then the restore alone (the
 *     monitor's figure: QEMU started, the template's state loaded, the guest running again);
 *  2. disk throughput of the para-virtualized (virtio-blk) and the emulated (IDE) device model, read and
 *     write with dd in the guest, plus block requests per MiB (QMP query-blockstats); an SVG chart goes to
 *     docs/vm-disk.svg;
 *  3. host memory of an idle VM with 512 MiB of guest RAM, restored from a template and booted cold: the PSS of
 *     QEMU and the monitor (smaps_rollup), and QEMU's RSS split into guest RAM touched and QEMU's own.
 *
 *   node --import tsx bench/vm.ts [--iterations N] [--json] [--no-chart] [--no-disk]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { qemuArgs } from '../src/vm/machine.js';
import { encodeFrame, encodeSpec, FrameDecoder, T } from '../src/vm/protocol.js';
import { ensureInitramfs } from '../src/vm/initramfs.js';
import { ensureDefaultKernel } from '../src/vm/kernel.js';
import { probeAccel } from '../src/host/qemu.js';
import { ctlRequest } from '../src/vm/ctl.js';
import type { VmStats } from '../src/vm/monitor.js';
import { median } from './lib/util.js';

const argv = process.argv.slice(2);
const iterations = Number(argv[argv.indexOf('--iterations') + 1] || 0) || 5;
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
if (!existsSync(hullEntry)) throw new Error('dist/hull.mjs is missing: run npm run build first');
const cache = process.env.HULL_VM_CACHE || '/var/tmp/hull-test-vm-cache';
const env = { ...process.env, HULL_VM_CACHE: cache };
const root = mkdtempSync(join(tmpdir(), 'hull-bench-vm-'));
const work = mkdtempSync(join(tmpdir(), 'hull-bench-vm-raw-'));
const accel = probeAccel().accel;

function hull(...a: string[]): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [hullEntry, '--root', root, ...a], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`hull ${a.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** Raw QEMU with hull's command line, driven to the workload's exit by a minimal agent client. */
async function rawBoot(kernel: string, initrd: string, disk: string): Promise<number> {
  const sockDir = mkdtempSync(join(work, 'run-'));
  const args = qemuArgs({
    accel,
    deviceModel: 'virtio',
    kernel,
    initrd,
    disk,
    diskFormat: 'qcow2',
    memoryMiB: 512,
    cpus: 1,
    name: 'raw',
    qmpSocket: 'qmp.sock',
    agentSocket: 'agent.sock',
    consoleSocket: 'console.sock',
  });
  // hull's QMP socket is a client connection to its monitor; for the raw run QEMU listens itself
  const i = args.indexOf('socket,id=qmp,path=qmp.sock');
  args[i] = 'socket,id=qmp,path=qmp.sock,server=on,wait=off';
  // and its console goes to a file (hull's monitor relays it from a socket)
  args[args.indexOf('socket,id=console,path=console.sock')] = 'file,id=console,path=console.log';
  const t0 = process.hrtime.bigint();
  return new Promise((resolvePromise, reject) => {
    const srv = createServer((s) => {
      const dec = new FrameDecoder();
      s.on('data', (b: Buffer) => {
        for (const f of dec.push(b)) {
          if (f.type === T.READY)
            s.write(encodeFrame(T.START, 0, encodeSpec({ args: ['true'], env: ['PATH=/bin:/usr/bin'], cwd: '/' })));
          if (f.type === T.EXITED) s.write(encodeFrame(T.POWEROFF, 0));
        }
      });
      s.on('error', () => undefined);
    });
    srv.listen(join(sockDir, 'agent.sock'), () => {
      const q = spawn('qemu-system-x86_64', args, { cwd: sockDir, stdio: 'ignore' });
      q.on('exit', (code) => {
        srv.close();
        rmSync(sockDir, { recursive: true, force: true });
        if (code !== 0) reject(new Error(`raw QEMU exited ${code}`));
        else resolvePromise(Number(process.hrtime.bigint() - t0) / 1e6);
      });
    });
  });
}

function procPss(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Guest RAM touched vs QEMU's own memory, from smaps: the guest RAM is the mapping of exactly -m bytes. */
function qemuMemory(pid: number, guestBytes: number): { rss: number; guestTouched: number } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  let rss = 0;
  let guestTouched = 0;
  let size = 0;
  for (const line of smaps) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (head) {
      size = parseInt(head[2]!, 16) - parseInt(head[1]!, 16);
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) {
      const b = Number(m[1]) * 1024;
      rss += b;
      if (size === guestBytes) guestTouched += b;
    }
  }
  return { rss, guestTouched };
}

function procRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function instanceDir(name: string): string {
  const id = (JSON.parse(hull('inspect', name).stdout) as { Id: string }[])[0]!.Id;
  return join(root, 'containers', id);
}

/** MiB/s of a dd in the guest, timed by the guest's clock (/proc/uptime around it; busybox dd prints no rate). */
function ddMiBs(name: string, mib: number, dd: string): number {
  const script = `read a _ < /proc/uptime; ${dd} 2>/dev/null; read b _ < /proc/uptime; echo "$a $b"`;
  const out = spawnSync(process.execPath, [hullEntry, '--root', root, 'exec', name, 'sh', '-c', script], {
    env,
    encoding: 'utf8',
  });
  const m = /([\d.]+) ([\d.]+)\s*$/.exec(out.stdout);
  if (!m) throw new Error(`no timing from the guest: ${out.stdout}${out.stderr}`);
  return mib / Math.max(0.01, Number(m[2]) - Number(m[1]));
}

async function blockStats(name: string): Promise<{ rdOps: number; rdBytes: number; wrOps: number; wrBytes: number }> {
  // the monitor's stats answer carries QMP's query-blockstats totals
  const a = await ctlRequest(instanceDir(name), { op: 'stats' }, name);
  const s = a.stats as VmStats;
  return { rdOps: s.blkReadOps, rdBytes: s.blkRead, wrOps: s.blkWriteOps, wrBytes: s.blkWrite };
}

function chart(rows: { label: string; read: number; write: number }[]): string {
  const W = 560;
  const H = 260;
  const max = Math.max(...rows.flatMap((r) => [r.read, r.write])) * 1.15;
  const barW = 60;
  const x0 = 70;
  const y0 = 210;
  const scale = (v: number) => (v / max) * 170;
  let bars = '';
  rows.forEach((r, i) => {
    const gx = x0 + i * 230;
    for (const [j, [k, v]] of (
      [
        ['read', r.read],
        ['write', r.write],
      ] as const
    ).entries()) {
      const h = scale(v);
      const x = gx + j * (barW + 10);
      bars += `<rect x="${x}" y="${(y0 - h).toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${k === 'read' ? '#3b7dd8' : '#e08a2c'}"/>`;
      bars += `<text x="${x + barW / 2}" y="${(y0 - h - 5).toFixed(1)}" font-size="12" text-anchor="middle">${v.toFixed(1)}</text>`;
    }
    bars += `<text x="${gx + barW + 5}" y="${y0 + 20}" font-size="13" text-anchor="middle">${r.label}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="${W / 2}" y="20" font-size="15" text-anchor="middle">hull VM disk throughput, MiB/s (${accel.toUpperCase()}, dd in the guest)</text>
<line x1="${x0 - 10}" y1="${y0}" x2="${W - 20}" y2="${y0}" stroke="#333"/>
${bars}
<rect x="${W - 150}" y="40" width="12" height="12" fill="#3b7dd8"/><text x="${W - 132}" y="51" font-size="12">read</text>
<rect x="${W - 150}" y="58" width="12" height="12" fill="#e08a2c"/><text x="${W - 132}" y="69" font-size="12">write (fsync)</text>
</svg>
`;
}

const results: Record<string, unknown> = { accel, iterations };
try {
  // warm-up: kernel, initramfs and the image's base disk are cached
  hull('run', '--rm', '--isolation', 'vm', 'busybox', 'true');
  const kernel = await ensureDefaultKernel(cache);
  const agent = join(repo, 'guest', 'hull-agent');
  const initrd = ensureInitramfs(cache, kernel, 'virtio-mmio', agent);
  const base = readdirSync(join(root, 'vm', 'disks')).find((n) => n.endsWith('.ext4'))!;

  // 1. boot to workload, alternating
  // like for like with raw QEMU (no NIC) is --network none; the default series adds the network: a netns, the
  // CNI plugins, a tap with tc redirects and a virtio-net NIC the agent configures
  const hullMs: number[] = [];
  const hullNoNetMs: number[] = [];
  const hullColdMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < iterations; i++) {
    hullMs.push(hull('run', '--rm', '--isolation', 'vm', 'busybox', 'true').ms);
    hullNoNetMs.push(hull('run', '--rm', '--network', 'none', '--isolation', 'vm', 'busybox', 'true').ms);
    hullColdMs.push(hull('run', '--rm', '--no-template', '--isolation', 'vm', 'busybox', 'true').ms);
    const overlay = join(work, `raw-${i}.qcow2`);
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', join(root, 'vm', 'disks', base), overlay]);
    rawMs.push(await rawBoot(kernel.image, initrd, overlay));
    rmSync(overlay, { force: true });
  }
  // the restore alone, as the monitor timed it (status: restoreMs), on detached VMs
  const restoreMs: number[] = [];
  for (let i = 0; i < Math.min(3, iterations); i++) {
    const name = `bench-restore-${i}`;
    hull('run', '-d', '--network', 'none', '--isolation', 'vm', '--name', name, 'busybox', 'sleep', '1d');
    const dir = instanceDir(name);
    for (;;) {
      const a = await ctlRequest(dir, { op: 'status' }, name);
      if (a.phase === 'running' || a.phase === 'ready') {
        if (typeof a.restoreMs === 'number' && a.restoreMs > 0) restoreMs.push(a.restoreMs);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    hull('rm', '-f', name);
  }
  results.boot = {
    hullMedianS: median(hullMs) / 1000,
    hullNoNetworkMedianS: median(hullNoNetMs) / 1000,
    hullColdMedianS: median(hullColdMs) / 1000,
    rawQemuMedianS: median(rawMs) / 1000,
    ratio: median(hullMs) / median(rawMs),
    ratioNoNetwork: median(hullNoNetMs) / median(rawMs),
    ratioCold: median(hullColdMs) / median(rawMs),
    restoreMedianMs: restoreMs.length ? median(restoreMs) : null,
    hullMs,
    hullNoNetMs,
    hullColdMs,
    rawMs,
    restoreMs,
  };

  // 3. host memory of an idle VM, restored and booted cold
  const idle: Record<string, unknown> = {};
  for (const how of ['template', 'cold'] as const) {
    const name = `bench-idle-${how}`;
    hull(
      'run',
      '-d',
      '--isolation',
      'vm',
      ...(how === 'cold' ? ['--no-template'] : []),
      '--memory',
      '512m',
      '--name',
      name,
      'busybox',
      'sleep',
      '1d',
    );
    const dir = instanceDir(name);
    hull('exec', name, 'true'); // up and running
    await new Promise((r) => setTimeout(r, 8000)); // idle: free page reporting has handed back what it frees
    const qpid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8'));
    const mpid = Number(readFileSync(join(dir, 'monitor.pid'), 'utf8'));
    const m = qemuMemory(qpid, 512 * 2 ** 20);
    idle[how] = {
      qemuPssMiB: procPss(qpid) / 2 ** 20,
      monitorPssMiB: procPss(mpid) / 2 ** 20,
      totalPssMiB: (procPss(qpid) + procPss(mpid)) / 2 ** 20,
      qemuRssMiB: m.rss / 2 ** 20,
      guestTouchedMiB: m.guestTouched / 2 ** 20,
      qemuOwnMiB: (m.rss - m.guestTouched) / 2 ** 20,
      monitorRssMiB: procRss(mpid) / 2 ** 20,
    };
    hull('rm', '-f', name);
  }
  results.idleMemory = idle;

  // 2. disk throughput, virtio vs emulated; 3. idle memory overhead (on the virtio VM before its I/O)
  const disk: {
    label: string;
    read: number;
    write: number;
    rdReqPerMiB: number;
    wrReqPerMiB: number;
    rdAccessPerMiB: number;
    wrAccessPerMiB: number;
  }[] = [];
  for (const model of argv.includes('--no-disk') ? [] : (['virtio', 'emulated'] as const)) {
    const name = `bench-${model}`;
    hull(
      'run',
      '-d',
      '--isolation',
      'vm',
      '--device-model',
      model,
      '--memory',
      '512m',
      '--name',
      name,
      'busybox',
      'sleep',
      '1d',
    );
    const dir = instanceDir(name);
    const dev = model === 'virtio' ? '/dev/vda' : '/dev/sda';
    // device accesses the hypervisor has to handle (each one a VM exit on KVM; under TCG, a call into the
    // device model): virtio's queue notifications (the guest's kick, an MMIO write) and interrupts, against
    // IDE's register and data port accesses and bus-master DMA register accesses. Counted from QEMU's trace
    // events (log backend → qemu.log), switched on over QMP for the dd runs only.
    const events =
      model === 'virtio'
        ? ['virtio_queue_notify', 'virtio_notify', 'virtio_mmio_read', 'virtio_mmio_write_offset']
        : [
            'ide_ioport_read',
            'ide_ioport_write',
            'ide_status_read',
            'ide_ctrl_write',
            'ide_data_readw',
            'ide_data_writew',
            'ide_data_readl',
            'ide_data_writel',
            'bmdma_read',
            'bmdma_write',
            'bmdma_cmd_writeb',
            'bmdma_addr_read',
            'bmdma_addr_write',
          ];
    const logLines = () =>
      readFileSync(join(dir, 'qemu.log'), 'utf8')
        .split('\n')
        .filter((l) => events.includes(l.replace(/^\d+@[\d.]+:/, '').split(' ')[0]!)).length;
    const before = await blockStats(name);
    spawnSync(
      process.execPath,
      [hullEntry, '--root', root, 'exec', name, 'sh', '-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'],
      { env },
    );
    await ctlRequest(dir, { op: 'trace', events, enable: true }, name);
    const t0 = logLines();
    const read = ddMiBs(name, 64, `dd if=${dev} of=/dev/null bs=1M count=64`);
    const t1 = logLines();
    const mid = await blockStats(name);
    const write = ddMiBs(name, 32, 'dd if=/dev/zero of=/bench.dat bs=1M count=32 conv=fsync');
    const t2 = logLines();
    await ctlRequest(dir, { op: 'trace', events, enable: false }, name);
    spawnSync(process.execPath, [hullEntry, '--root', root, 'exec', name, 'rm', '-f', '/bench.dat'], { env });
    const after = await blockStats(name);
    disk.push({
      label: model === 'virtio' ? 'virtio-blk (microvm)' : 'IDE (pc, emulated)',
      read,
      write,
      rdReqPerMiB: (mid.rdOps - before.rdOps) / Math.max(1, (mid.rdBytes - before.rdBytes) / 2 ** 20),
      wrReqPerMiB: (after.wrOps - mid.wrOps) / Math.max(1, (after.wrBytes - mid.wrBytes) / 2 ** 20),
      rdAccessPerMiB: (t1 - t0) / 64,
      wrAccessPerMiB: (t2 - t1) / 32,
    });
    hull('rm', '-f', name);
  }
  results.disk = disk;
  if (disk.length > 0 && !argv.includes('--no-chart')) writeFileSync(join(repo, 'docs', 'vm-disk.svg'), chart(disk));
} finally {
  spawnSync(
    process.execPath,
    [
      hullEntry,
      '--root',
      root,
      'rm',
      '-f',
      'bench-virtio',
      'bench-emulated',
      'bench-idle-template',
      'bench-idle-cold',
      'bench-restore-0',
      'bench-restore-1',
      'bench-restore-2',
    ],
    {
      env,
      stdio: 'ignore',
    },
  );
  rmSync(root, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}

if (asJson) {
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
} else {
  const b = results.boot as {
    hullMedianS: number;
    hullNoNetworkMedianS: number;
    hullColdMedianS: number;
    rawQemuMedianS: number;
    ratio: number;
    ratioNoNetwork: number;
    ratioCold: number;
    restoreMedianMs: number | null;
  };
  type Idle = {
    qemuPssMiB: number;
    monitorPssMiB: number;
    totalPssMiB: number;
    qemuRssMiB: number;
    guestTouchedMiB: number;
    qemuOwnMiB: number;
  };
  const idle = results.idleMemory as Record<'template' | 'cold', Idle>;
  const d = results.disk as {
    label: string;
    read: number;
    write: number;
    rdReqPerMiB: number;
    wrReqPerMiB: number;
    rdAccessPerMiB: number;
    wrAccessPerMiB: number;
  }[];
  console.log(`VM benchmarks (accelerator: ${accel}, ${iterations} iterations, medians)`);
  console.log(
    `  start to workload: hull run --rm --isolation vm busybox true  ${b.hullMedianS.toFixed(2)} s (template)`,
  );
  console.log(`                     the same with --network none              ${b.hullNoNetworkMedianS.toFixed(2)} s`);
  console.log(`                     the same with --no-template (cold boot)   ${b.hullColdMedianS.toFixed(2)} s`);
  console.log(
    `                     raw QEMU cold boot, same kernel/initramfs/disk ${b.rawQemuMedianS.toFixed(2)} s   (hull/raw ${b.ratio.toFixed(2)}x, --network none ${b.ratioNoNetwork.toFixed(2)}x, cold ${b.ratioCold.toFixed(2)}x)`,
  );
  console.log(`  restore alone (QEMU start, state loaded, guest running): ${b.restoreMedianMs ?? '-'} ms`);
  for (const how of ['template', 'cold'] as const) {
    const m = idle[how];
    console.log(
      `  idle VM, 512 MiB, ${how.padEnd(8)}: PSS QEMU ${m.qemuPssMiB.toFixed(1)} + monitor ${m.monitorPssMiB.toFixed(1)} = ${m.totalPssMiB.toFixed(1)} MiB (QEMU RSS ${m.qemuRssMiB.toFixed(1)}: guest RAM touched ${m.guestTouchedMiB.toFixed(1)}, QEMU's own ${m.qemuOwnMiB.toFixed(1)})`,
    );
  }
  for (const x of d)
    console.log(
      `  disk ${x.label.padEnd(22)} read ${x.read.toFixed(1)} MiB/s, write ${x.write.toFixed(1)} MiB/s; requests/MiB read ${x.rdReqPerMiB.toFixed(1)}, write ${x.wrReqPerMiB.toFixed(1)}; device accesses/MiB read ${x.rdAccessPerMiB.toFixed(0)}, write ${x.wrAccessPerMiB.toFixed(0)}`,
    );
}
