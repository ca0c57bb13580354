/**
 * The web console in a real browser: Debian's chromium driven by playwright-core, against `hull daemon --listen`
 * on a free loopback port and a private root. Logs in through the link `hull console url` prints; sees a container
 * and a VM (created by the CLI, not booted: TCG boots are slow) listed; creates a container from the form; types
 * into its terminal (xterm.js over the exec WebSocket) and checks the file with `hull exec`; watches its logs
 * stream; changes its memory limit live and checks it; stops and removes it; shows a VM's screen through noVNC (a
 * disk-image VM booting a blank disk) and a graphical container's (xclock from the X11 image of
 * test/helpers/x11.ts, created from the form with a display); makes a btrfs storage pool on the Storage page and a
 * volume of a set size in it on the volumes page, then removes both; a request without a session gets 401; a
 * cross-site POST is refused. Screenshots of every page (1280×800 and a phone's 390 px) go to
 * test-artifacts/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type Daemon, startDaemon } from './helpers/daemon.js';
import { HullRoot, REPO, waitFor } from './helpers/hull.js';
import { x11Root } from './helpers/x11.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM)
  ? "needs Debian's chromium (/usr/bin/chromium)"
  : spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0
    ? 'needs QEMU (a VM is listed)'
    : false;
const ARTIFACTS = join(REPO, 'test-artifacts', 'console');
const noXvnc =
  spawnSync('sh', ['-c', 'command -v Xvnc']).status !== 0
    ? 'needs Xvnc (tigervnc-standalone-server) for a graphical container'
    : spawnSync('sh', ['-c', 'command -v mmdebstrap']).status !== 0
      ? 'needs mmdebstrap to make the X11 image'
      : false;

/** Whether the noVNC canvas shows something: some pixel differs from the first (run in the page). */
function canvasDrawn(): boolean {
  const c = document.querySelector<HTMLCanvasElement>('[data-vnc] canvas');
  if (!c || !c.width || !c.height) return false;
  const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
  for (let i = 4; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
  return false;
}

const root = new HullRoot('console', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const work = mkdtempSync('/tmp/hull-test-console-sock-');
const socket = join(work, 'hull.sock');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Answer {
  status: number;
  body: string;
}

/** An HTTPS request to the console's listener (its certificate is self-signed), outside the browser. */
function https(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        text += s;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the web console in a browser', { skip }, () => {
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let port = 0;
  let base = '';
  let createdId = '';
  const pageErrors: string[] = [];
  const shot = async (name: string, p: Page = page) => {
    await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  };

  before(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    port = await freePort();
    base = `https://127.0.0.1:${port}`;
    daemon = await startDaemon(root, socket, ['--listen', `127.0.0.1:${port}`]);
    // the TCP listener is ready once it answers (any status) over TLS
    await waitFor(
      'the console listener to answer',
      async () => (await https(port, 'GET', '/hull/v1/session').catch(() => ({ status: 0 }))).status > 0,
      20_000,
      50,
    );
    await root.ok('run', '-d', '--name', 'listed', 'busybox', 'sleep', '600');
    await root.ok('create', '--isolation', 'vm', '--name', 'guest', 'busybox', 'sleep', '600');
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--ignore-certificate-errors'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: true });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // chromium aborts requests when the host's interfaces change (ERR_NETWORK_CHANGED: instances starting, here or
    // in other tests); the console retries reads, and this log says what was aborted
    page.on('requestfailed', (r) => console.log(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
    // confirm() before a removal
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
    rmSync(work, { recursive: true, force: true });
    try {
      await root.cleanupAndCheck();
    } finally {
      await root.dispose();
    }
  });

  test('a request without a session gets 401, and the page says how to log in', async () => {
    assert.equal((await https(port, 'GET', '/hull/v1/instances')).status, 401);
    await page.goto(`${base}/instances`);
    await page.getByRole('heading', { name: 'Session ended' }).waitFor();
    assert.match((await page.textContent('main')) ?? '', /hull console url/);
    await shot('session-ended');
  });

  test('logs in through the printed link: a session cookie (HttpOnly) and the overview', async () => {
    const link = (await root.ok('console', 'url')).trim();
    assert.match(link, new RegExp(`^https://127\\.0\\.0\\.1:${port}/`));
    await page.goto(link);
    await page.waitForURL(`${base}/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'hull_session');
    assert.ok(session, `a hull_session cookie (${cookies.map((c) => c.name).join(', ')})`);
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(cookies.find((c) => c.name === 'hull_csrf'));
    // a link works once
    assert.equal((await https(port, 'GET', new URL(link).pathname + new URL(link).search)).status, 401);
    // the charts have data (the host's stream, or its polling fallback)
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-points]')].every((e) => Number(e.getAttribute('data-points')) >= 3),
    );
    await shot('overview');
  });

  test('lists a container and a VM in one table', async () => {
    await page.getByRole('link', { name: 'Instances', exact: true }).click();
    await page.locator('tr[data-instance="listed"]').waitFor();
    const vmRow = page.locator('tr[data-instance="guest"]');
    await vmRow.waitFor();
    assert.match((await page.locator('tr[data-instance="listed"]').textContent()) ?? '', /running.*container.*busybox/);
    assert.match((await vmRow.textContent()) ?? '', /created.*VM.*busybox/);
    // the filter narrows it to VMs
    await page.getByLabel('Kind').selectOption('vm');
    await page.locator('tr[data-instance="listed"]').waitFor({ state: 'detached' });
    await page.getByLabel('Kind').selectOption('');
    await page.locator('tr[data-instance="listed"] .spark svg polyline').first().waitFor({ state: 'attached' });
    await shot('instances');
    // by keyboard: on a fresh load the first Tab reaches the skip link, Enter on a row's link opens the VM's page
    await page.reload();
    await page.locator('tr[data-instance="guest"]').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.getByRole('link', { name: 'guest', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /guest/ }).waitFor();
    // a VM (not started): its serial console and display tabs are there, the terminal too (an image VM)
    for (const tab of ['Configuration', 'Stats', 'Logs', 'Terminal', 'Serial console', 'Display'])
      await page.getByRole('tab', { name: tab, exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Serial console' }).click();
    await page.getByText('Start the VM for its console.').waitFor();
    await shot('vm');
    await page.goBack();
    await page.locator('tr[data-instance="listed"]').waitFor();
  });

  test('creates and starts a container from the form', async () => {
    await page.getByRole('link', { name: 'Create', exact: true }).first().click();
    await page.getByRole('heading', { name: 'Create an instance' }).waitFor();
    await page.getByLabel('Image', { exact: true }).fill('busybox');
    await page.getByLabel(/^Name/).fill('fromform');
    await page.getByLabel(/^Command/).fill(`sh -c 'i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.3; done'`);
    await page.getByLabel(/^Environment/).fill('GREETING=hello');
    await page.getByLabel(/^Volumes/).fill('console-data:/data');
    await shot('create');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL(/\/instances\/[0-9a-f]{64}$/);
    createdId = page.url().split('/').pop()!;
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor();
    const inspect = await root.inspect('fromform');
    assert.equal(inspect.Id, createdId);
    assert.ok((inspect.Config as { Env: string[] }).Env.includes('GREETING=hello'));
    const mounts = inspect.Mounts as { Type: string; Name?: string; Destination: string }[];
    assert.ok(mounts.some((m) => m.Type === 'volume' && m.Name === 'console-data' && m.Destination === '/data'));
    await shot('instance');
  });

  test('its terminal: a shell over the exec WebSocket; the file it writes is there for hull exec', async () => {
    await page.getByRole('tab', { name: 'Terminal' }).click();
    await page.locator('.xterm-helper-textarea').waitFor({ state: 'attached' });
    await page.getByRole('status').filter({ hasText: 'connected' }).waitFor();
    await page.locator('.term-box').click();
    // the quotes keep the echoed command line from matching the output
    await page.keyboard.type(`echo hi > /tmp/from-console && echo wr''itten\n`);
    await page.waitForFunction(() =>
      /(^|\s)written(\s|$)/m.test(
        [...document.querySelectorAll('.xterm-rows > div')].map((d) => d.textContent).join('\n'),
      ),
    );
    assert.equal((await root.ok('exec', 'fromform', 'cat', '/tmp/from-console')).trim(), 'hi');
    await shot('terminal');
  });

  test('its logs stream, with search', async () => {
    await page.getByRole('tab', { name: 'Logs' }).click();
    const logs = page.locator('[data-logs="fromform"]');
    const highest = async () =>
      Math.max(-1, ...[...((await logs.textContent()) ?? '').matchAll(/line-(\d+)/g)].map((m) => Number(m[1])));
    await waitFor('log lines', async () => (await highest()) >= 0, 20_000);
    const first = await highest();
    // a line written after the page opened arrives without a reload
    await waitFor(`a line after line-${first}`, async () => (await highest()) > first, 20_000);
    await page.getByLabel('search the logs').fill('line-1');
    await waitFor('only matching lines', async () =>
      ((await logs.textContent()) ?? '').split(/(?=line-)/).every((l) => !l || l.startsWith('line-1')),
    );
    await shot('logs');
    await page.getByLabel('search the logs').fill('');
  });

  test('changes its memory limit live', async () => {
    await page.getByRole('tab', { name: 'Configuration' }).click();
    await page.getByLabel('Memory limit (MiB)').fill('96');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').filter({ hasText: 'applied' }).waitFor();
    const inspect = await root.inspect('fromform');
    assert.equal((inspect.HostConfig as { Memory: number }).Memory, 96 * 1024 * 1024);
    // the running instance's cgroup has it (the figures the API reports come from there)
    const m = (await (await page.request.get(`${base}/hull/v1/instances/${createdId}/metrics`)).json()) as {
      memoryLimitBytes: number;
    };
    assert.equal(m.memoryLimitBytes, 96 * 1024 * 1024);
    await page.getByRole('tab', { name: 'Stats' }).click();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-points]')].every((e) => Number(e.getAttribute('data-points')) >= 2),
    );
    await shot('stats');
  });

  test('a cross-site POST is refused', async () => {
    const cookies = await context.cookies();
    const jar = cookies
      .filter((c) => c.name.startsWith('hull_'))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
    const csrf = cookies.find((c) => c.name === 'hull_csrf')!.value;
    const stop = `/hull/v1/instances/${createdId}/stop`;
    // the session cookie alone (what a form on another site would send) is not enough
    const noToken = await https(port, 'POST', stop, { Cookie: jar, Origin: 'https://evil.example' });
    assert.equal(noToken.status, 403, noToken.body);
    // nor the token from another origin
    const foreign = await https(port, 'POST', stop, {
      Cookie: jar,
      'X-Hull-CSRF': csrf,
      Origin: 'https://evil.example',
    });
    assert.equal(foreign.status, 403, foreign.body);
    // a page of another origin in the same browser: its POST gets no session (SameSite=Strict) or is refused
    const other = await context.newPage();
    await other.goto('about:blank');
    const status = await other.evaluate(async (url) => {
      try {
        const r = await fetch(url, { method: 'POST', credentials: 'include' });
        return r.status;
      } catch {
        return 0; // refused by the browser (CORS): nothing was done either
      }
    }, `${base}${stop}`);
    assert.notEqual(status, 200);
    await other.close();
    assert.equal((await root.inspect('fromform')).State.Status, 'running');
  });

  test('the other pages: images, networks, volumes, events; a phone-width layout', async () => {
    for (const [name, heading] of [
      ['images', 'Images'],
      ['networks', 'Networks'],
      ['volumes', 'Volumes'],
      ['events', 'Events'],
    ] as const) {
      await page.getByRole('link', { name: heading, exact: true }).click();
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      if (name === 'images') await page.locator('tr[data-image="busybox:latest"]').waitFor();
      if (name === 'networks') await page.locator('tr[data-network="hull"]').waitFor();
      if (name === 'events') await page.locator('.events li', { hasText: 'fromform' }).first().waitFor();
      await shot(name);
    }
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${base}/instances`);
    await phone.locator('tr[data-instance="fromform"]').waitFor();
    await shot('phone-instances', phone);
    // no horizontal scrolling at a phone's width
    const wide = await phone.evaluate(() =>
      [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > 391)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
    );
    assert.deepEqual(wide, []);
    await phone.getByRole('button', { name: 'Menu' }).click();
    await phone.getByRole('link', { name: 'Overview' }).click();
    await phone.getByRole('heading', { name: 'Overview' }).waitFor();
    await phone.waitForFunction(() =>
      [...document.querySelectorAll('[data-points]')].every((e) => Number(e.getAttribute('data-points')) >= 2),
    );
    await shot('phone-overview', phone);
    await phone.close();
  });

  test('stops and removes it from its page', async () => {
    await page.goto(`${base}/instances/${createdId}`);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('h1 .badge', { hasText: 'exited' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await page.waitForURL(`${base}/instances`);
    await page.locator('tr[data-instance="fromform"]').waitFor({ state: 'detached' });
    assert.doesNotMatch(await root.ok('ps', '-a', '--format', '{{.Names}}'), /fromform/);
    // the volume it made stays, on the volumes page, until removed there
    await page.getByRole('link', { name: 'Volumes', exact: true }).click();
    await page.getByRole('button', { name: 'remove volume console-data' }).click();
    await page.locator('tr[data-volume="console-data"]').waitFor({ state: 'detached' });
    assert.doesNotMatch(await root.ok('volume', 'ls', '-q'), /console-data/);
    assert.deepEqual(pageErrors, []);
  });

  test("a VM's graphical console: noVNC draws its screen", async () => {
    // a disk that boots nothing: the screen holds QEMU's or SeaBIOS's text (disk-image VMs have a display by default)
    const disk = join(work, 'blank.qcow2');
    assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']).status, 0);
    await root.ok('vm', 'create', '--disk', disk, '--name', 'desk', '--start');
    await page.goto(`${base}/instances/desk?tab=display`);
    await page.getByRole('status').filter({ hasText: 'display: connected' }).waitFor({ timeout: 120_000 });
    // not blank: some pixel differs from the first
    await page.waitForFunction(canvasDrawn, undefined, { timeout: 120_000, polling: 500 });
    await page.getByRole('button', { name: 'Send Ctrl-Alt-Del' }).waitFor();
    await page.getByRole('button', { name: 'Fullscreen' }).waitFor();
    await shot('display');
    await page.goto(`${base}/instances`);
    await root.ok('rm', '-f', 'desk');
  });

  test('a graphical container from the form: its X11 application drawn through noVNC', async (t) => {
    if (noXvnc) return t.skip(noXvnc);
    const made = x11Root();
    if ('skip' in made) return t.skip(made.skip);
    await root.ok('import', made.tar, 'x11');
    await page.goto(`${base}/create`);
    await page.getByRole('heading', { name: 'Create an instance' }).waitFor();
    await page.getByLabel('Image', { exact: true }).fill('x11');
    await page.getByLabel(/^Name/).fill('clock');
    await page.getByLabel(/^Command/).fill('xclock -update 1');
    await page.getByLabel(/Graphical display/).check();
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL(/\/instances\/[0-9a-f]{64}$/);
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor();
    // the form asked for a container with a display (POST /instances {display: 'vnc'})
    const inst = (await (await page.request.get(`${base}/hull/v1/instances/clock`)).json()) as {
      kind: string;
      display: unknown;
    };
    assert.deepEqual([inst.kind, inst.display], ['container', { type: 'vnc' }]);
    await page.getByRole('tab', { name: 'Display', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'display: connected' }).waitFor({ timeout: 60_000 });
    await page.waitForFunction(canvasDrawn, undefined, { timeout: 60_000, polling: 500 });
    // a container's display has no Ctrl-Alt-Del to send
    assert.equal(await page.getByRole('button', { name: 'Send Ctrl-Alt-Del' }).count(), 0);
    await shot('display-container');
    await page.goto(`${base}/instances`);
    await root.ok('rm', '-f', 'clock');
    await root.ok('rmi', 'x11');
  });

  test('storage: a btrfs pool made on the Storage page, a sized volume in it on the volumes page; both removed', async () => {
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Storage', exact: true }).click();
    await page.getByRole('heading', { name: 'Storage', exact: true }).waitFor();
    await page.locator('tr[data-pool="default"]').waitFor();
    const form = page.getByRole('form', { name: 'create a storage pool' });
    await form.getByLabel('Name').fill('webpool');
    await form.getByLabel('Driver').selectOption('btrfs');
    await form.getByLabel('Size (MiB)').fill('128');
    await form.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-pool="webpool"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /btrfs/);
    assert.match(await root.ok('storage', 'pool', 'ls', '-q'), /^webpool$/m);

    await page.getByRole('link', { name: 'Volumes', exact: true }).click();
    await page.getByRole('heading', { name: 'Volumes', exact: true }).waitFor();
    const vform = page.getByRole('form', { name: 'create a volume' });
    await vform.getByLabel('Pool').selectOption('webpool');
    await vform.getByLabel('Name').fill('sized');
    await vform.getByLabel('Size (MiB)').fill('16');
    await vform.getByRole('button', { name: 'Create' }).click();
    const vrow = page.locator('tr[data-volume="sized"]');
    await vrow.waitFor();
    assert.match((await vrow.textContent()) ?? '', /webpool.*16\.0 MiB/);
    const [vol] = JSON.parse(await root.ok('volume', 'inspect', 'sized')) as { Pool: string; Size: number }[];
    assert.deepEqual([vol!.Pool, vol!.Size], ['webpool', 16 * 1024 * 1024]);
    await shot('volumes-pool');

    await page.getByRole('link', { name: 'Storage', exact: true }).click();
    await page.locator('tr[data-pool="webpool"]', { hasText: 'sized' }).waitFor();
    // a pool that holds a volume cannot be removed from here
    assert.equal(await page.getByRole('button', { name: 'remove pool webpool' }).isDisabled(), true);
    await shot('storage');
    await page.getByRole('link', { name: 'Volumes', exact: true }).click();
    await page.getByRole('button', { name: 'remove volume sized' }).click();
    await vrow.waitFor({ state: 'detached' });
    await page.getByRole('link', { name: 'Storage', exact: true }).click();
    await page.getByRole('button', { name: 'remove pool webpool' }).click();
    await page.locator('tr[data-pool="webpool"]').waitFor({ state: 'detached' });
    assert.equal((await root.ok('storage', 'pool', 'ls', '-q')).trim(), 'default');
    assert.deepEqual(pageErrors, []);
  });

  test('logout ends the session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Logged out' }).waitFor();
    const r = await page.request.get(`${base}/hull/v1/instances`);
    assert.equal(r.status(), 401);
  });
});
