/**
 * Benchmark: the web console on loopback, in Debian's chromium (playwright-core), against `hull daemon --listen` on
 * a private root with one running busybox container:
 *   - first load: the JavaScript the overview page loads, in bytes as served and gzip-compressed (-9), and what
 *     the pages load later (xterm.js, noVNC, uPlot chunks) for comparison
 *   - time to usable: from navigation to the instance table showing its rows (a fresh page each time, cache
 *     kept as a returning user has it, and cold), median of N
 *   - terminal keystroke echo: a key pressed in xterm.js (a shell over the exec WebSocket) until its echo is drawn,
 *     timed inside the page (keydown to the DOM change), median and p90 of N
 *
 *   node --import tsx bench/console-browser.ts [--iterations N] [--keys N] [--json]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) || dflt : dflt);
const iterations = arg('--iterations', 10);
const keys = arg('--keys', 40);
const asJson = argv.includes('--json');
const CHROMIUM = '/usr/bin/chromium';
const repo = resolve(import.meta.dirname, '..');
const hull = join(repo, 'dist/hull.mjs');
if (!existsSync(join(repo, 'dist/console/index.html'))) throw new Error('dist/console is missing: run npm run build');
if (!existsSync(CHROMIUM)) {
  console.log("bench/console-browser.ts skipped: no /usr/bin/chromium (Debian's chromium)");
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'hull-bench-console-browser-'));
const root = join(work, 'root');
const sock = join(work, 'hull.sock');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [hull, '--root', root, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hull ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;
const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });

let daemon: ChildProcess | undefined;
try {
  const port = await freePort();
  const base = `https://127.0.0.1:${port}`;
  daemon = spawn(
    process.execPath,
    [hull, '--root', root, 'daemon', '--socket', sock, '--listen', `127.0.0.1:${port}`],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  // ready once `hull console url` finds the listener the daemon recorded
  let link = '';
  for (let i = 0; i < 200 && !link; i++) {
    const r = spawnSync(process.execPath, [hull, '--root', root, 'console', 'url'], { encoding: 'utf8' });
    if (r.status === 0) link = r.stdout.trim();
    else await new Promise((r2) => setTimeout(r2, 100));
  }
  if (!link) throw new Error('the daemon never recorded its --listen address');
  run('run', '-d', '--name', 'bench', 'busybox', 'sleep', '3600');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--ignore-certificate-errors'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  // wait for the listener: the login page answers once it is up
  for (let i = 0; ; i++) {
    try {
      await page.goto(link);
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await page.getByRole('heading', { name: 'Overview' }).waitFor();

  // first load: the scripts the overview fetched
  const firstJs = new Set<string>();
  const p2 = await context.newPage();
  p2.on('response', (r) => {
    if (r.url().endsWith('.js')) firstJs.add(new URL(r.url()).pathname);
  });
  await p2.goto(`${base}/`);
  await p2.getByRole('heading', { name: 'Overview' }).waitFor();
  await p2.locator('.uplot').first().waitFor();
  // what went over the wire (the daemon compresses: brotli when the browser takes it)
  const served = await p2.evaluate(() =>
    (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .filter((e) => e.name.endsWith('.js'))
      .reduce((a, e) => a + e.encodedBodySize, 0),
  );
  await p2.close();
  const assets = join(repo, 'dist/console');
  const sizeOf = (path: string) => {
    const b = readFileSync(join(assets, path));
    return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
  };
  const entry = /<script[^>]+src="([^"]+)"/.exec(readFileSync(join(assets, 'index.html'), 'utf8'))![1]!;
  const initial = sizeOf(entry);
  const overview = [...firstJs].map(sizeOf).reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), {
    raw: 0,
    gzip: 0,
  });
  const chunks = Object.fromEntries(
    readdirSync(join(assets, 'assets'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => [f.replace(/-[\w-]{8}\.js$/, ''), sizeOf(`/assets/${f}`).gzip]),
  );

  // time to usable: a new page, to the instance table with its rows
  const usable = async (cold: boolean) => {
    const ctx = cold ? await browser.newContext({ viewport: { width: 1280, height: 800 } }) : context;
    if (cold) await ctx.addCookies(await context.cookies());
    const p = await ctx.newPage();
    const t0 = performance.now();
    await p.goto(`${base}/instances`);
    await p.locator('tr[data-instance="bench"]').waitFor();
    const ms = performance.now() - t0;
    await p.close();
    if (cold) await ctx.close();
    return ms;
  };
  await usable(false); // warm the cache
  const warm: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < iterations; i++) {
    warm.push(await usable(false));
    cold.push(await usable(true));
  }

  // keystroke echo: keydown to the echoed character drawn, measured in the page
  const ids = JSON.parse(run('inspect', 'bench')) as { Id: string }[];
  await page.goto(`${base}/instances/${ids[0]!.Id}?tab=terminal`);
  await page.getByRole('status').filter({ hasText: 'connected' }).waitFor();
  await page.locator('.term-box').click();
  await page.keyboard.type('cat > /dev/null\n');
  await page.evaluate(() => {
    const w = window as unknown as { __echo: { down: number; lat: number[] } };
    w.__echo = { down: 0, lat: [] };
    const rows = document.querySelector('.xterm-rows')!;
    document.addEventListener('keydown', () => (w.__echo.down = performance.now()), true);
    let text = rows.textContent;
    // the text changing, not the cursor blinking
    new MutationObserver(() => {
      if (rows.textContent === text) return;
      text = rows.textContent;
      if (w.__echo.down) {
        w.__echo.lat.push(performance.now() - w.__echo.down);
        w.__echo.down = 0;
      }
    }).observe(rows, { childList: true, subtree: true, characterData: true });
  });
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < keys; i++) {
    const before = await page.evaluate(() => (window as unknown as { __echo: { lat: number[] } }).__echo.lat.length);
    await page.keyboard.press(letters[i % letters.length]!);
    await page.waitForFunction(
      (n) => (window as unknown as { __echo: { lat: number[] } }).__echo.lat.length > n,
      before,
    );
  }
  const lat = await page.evaluate(() => (window as unknown as { __echo: { lat: number[] } }).__echo.lat);
  await browser.close();

  const result = {
    firstLoadJs: {
      entryGzip: initial.gzip,
      overviewGzip: overview.gzip,
      overviewRaw: overview.raw,
      overviewServed: served,
      chunksGzip: chunks,
    },
    timeToUsableMs: { warmMedian: median(warm), coldMedian: median(cold) },
    keystrokeEchoMs: { median: median(lat), p90: p90(lat), n: lat.length },
  };
  if (asJson) console.log(JSON.stringify(result, null, 2));
  else {
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    console.log(
      `first load, JS: entry ${kb(initial.gzip)} gzip; the overview's scripts ${kb(overview.gzip)} gzip, ${kb(served)} as served (${kb(overview.raw)} raw)`,
    );
    console.log(
      `later chunks (gzip): ${Object.entries(chunks)
        .map(([k, v]) => `${k} ${kb(v)}`)
        .join(', ')}`,
    );
    console.log(
      `time to usable (instances table): ${median(warm).toFixed(0)} ms cached, ${median(cold).toFixed(0)} ms cold (median of ${iterations})`,
    );
    console.log(
      `terminal keystroke echo: median ${median(lat).toFixed(1)} ms, p90 ${p90(lat).toFixed(1)} ms (${lat.length} keys)`,
    );
  }
} finally {
  try {
    run('rm', '-f', 'bench');
  } catch {
    /* never created */
  }
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
  }
  rmSync(work, { recursive: true, force: true });
}
