/**
 * Benchmark: the daemon's CPU spent on the web console's live data. N running containers (`--network none`, busybox
 * `sleep`) on a private root; `hull daemon --listen` on it; P console pages, each watching what a page of the
 * console watches (the instances list: `/hull/v1/stats/stream`, every instance each second; the overview:
 * `/hull/v1/host/metrics/stream`; one instance's page: `/hull/v1/instances/{id}/stats/stream`), logged in through
 * `hull console url`'s link. The daemon's CPU time (utime + stime from /proc) over a window, idle first (nobody
 * watching), then watched; as a percentage of one core.
 *
 *   node --import tsx bench/console.ts [--instances 100] [--pages 3] [--seconds 30] [--json]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) =>
  argv.includes(name) ? Number(argv[argv.indexOf(name) + 1] || 0) || dflt : dflt;
const instances = arg('--instances', 100);
const pages = arg('--pages', 3);
const seconds = arg('--seconds', 30);
const asJson = argv.includes('--json');
const repo = resolve(import.meta.dirname, '..');
const hullEntry = join(repo, 'dist/hull.mjs');
const work = mkdtempSync(join(tmpdir(), 'hull-bench-console-'));
const root = join(work, 'root');
const socket = join(work, 'hull.sock');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function hull(...args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [hullEntry, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    c.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
    });
    c.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`hull ${args.join(' ')}: ${code} ${err}`))));
  });
}

/** CPU seconds a process has used (user + system). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

async function measure(pid: number, s: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, s * 1000));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return ((cpuSeconds(pid) - c0) / wall) * 100;
}

async function main(): Promise<void> {
  let daemon: ChildProcess | undefined;
  const sockets: WebSocket[] = [];
  try {
    // the instances, four at a time
    const ids: string[] = [];
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < instances) {
          next++;
          ids.push((await hull('run', '-d', '--network', 'none', 'busybox', 'sleep', '100000')).trim());
        }
      }),
    );
    if (!asJson) console.log(`${ids.length} containers running (${((Date.now() - t0) / 1000).toFixed(0)} s to start)`);

    daemon = spawn(
      process.execPath,
      [hullEntry, '--root', root, 'daemon', '--socket', socket, '--listen', '127.0.0.1:0'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    daemon.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log += s;
    });
    const listenFile = join(root, 'daemon', 'listen');
    for (let i = 0; ; i++) {
      try {
        if (readFileSync(listenFile, 'utf8').trim()) break;
      } catch {
        // not yet
      }
      if (i > 600) throw new Error(`the daemon did not listen: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const listen = readFileSync(listenFile, 'utf8').trim();
    const ca = readFileSync(join(root, 'daemon', 'tls', 'cert.pem'));
    const link = new URL((await hull('console', 'url')).trim());
    const cookie = await new Promise<string>((res, rej) => {
      const req = httpsRequest({ host: link.hostname, port: link.port, path: link.pathname + link.search, ca }, (r) => {
        r.resume();
        const set = (r.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]);
        res(set.join('; '));
      });
      req.on('error', rej);
      req.end();
    });
    const pid = daemon.pid!;
    // settle, then idle
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await measure(pid, seconds);

    let frames = 0;
    let bytes = 0;
    const open = (path: string) =>
      new Promise<void>((res, rej) => {
        const ws = new WebSocket(`wss://${listen}${path}`, {
          ca,
          headers: { Cookie: cookie },
          origin: `https://${listen}`,
        });
        ws.on('open', () => res());
        ws.on('message', (d: Buffer) => {
          frames++;
          bytes += d.length;
        });
        ws.on('error', rej);
        sockets.push(ws);
      });
    for (let p = 0; p < pages; p++) {
      await open('/hull/v1/stats/stream');
      await open('/hull/v1/host/metrics/stream');
      await open(`/hull/v1/instances/${ids[p % ids.length]}/stats/stream`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const f0 = frames;
    const b0 = bytes;
    const watched = await measure(pid, seconds);
    const result = {
      instances: ids.length,
      pages,
      streams: sockets.length,
      seconds,
      idleCpuPercent: Math.round(idle * 100) / 100,
      watchedCpuPercent: Math.round(watched * 100) / 100,
      framesPerSecond: Math.round(((frames - f0) / seconds) * 10) / 10,
      kibPerSecond: Math.round(((bytes - b0) / 1024 / seconds) * 10) / 10,
    };
    if (asJson) console.log(JSON.stringify(result));
    else {
      console.log(
        `daemon CPU, ${ids.length} running containers: idle ${result.idleCpuPercent}% of a core; ` +
          `${pages} console pages watching (${sockets.length} streams, ${result.framesPerSecond} frames/s, ` +
          `${result.kibPerSecond} KiB/s): ${result.watchedCpuPercent}% of a core (target < 5%)`,
      );
    }
  } finally {
    for (const ws of sockets) ws.close();
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    const left = (await hull('ps', '-a', '-q', '--no-trunc').catch(() => '')).split('\n').filter(Boolean);
    for (let i = 0; i < left.length; i += 20) await hull('rm', '-f', ...left.slice(i, i + 20)).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
