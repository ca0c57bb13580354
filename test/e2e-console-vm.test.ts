/**
 * The web console's two VM terminals in a real browser (Debian's chromium driven by playwright-core, against
 * `hull daemon --listen` on a free loopback port and a private root): an image VM started by the CLI
 * (`hull run -d --isolation vm`, from a VM template after the first start), logged in through the link of
 * `hull console url`; its Terminal tab (a shell over the exec WebSocket, through hull's agent) writes a file that
 * `hull exec` reads; its Serial console tab (the guest's ttyS0 over the console WebSocket) shows what the guest
 * writes to its serial port, and what is typed there reaches a reader of ttyS0 in the guest; then the VM is
 * stopped and removed from its page. Screenshots go to test-artifacts/console/vm-*.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type Daemon, startDaemon } from './helpers/daemon.js';
import { HullRoot, REPO, waitFor } from './helpers/hull.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM)
  ? "needs Debian's chromium (/usr/bin/chromium)"
  : spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0
    ? 'needs QEMU (an image VM is started)'
    : false;
const ARTIFACTS = join(REPO, 'test-artifacts', 'console');

const root = new HullRoot('console-vm', {
  HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache',
});
const work = mkdtempSync('/tmp/hull-test-console-vm-sock-');
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

/** The status of a GET to the console's listener (self-signed), outside the browser; 0 while nothing answers. */
function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** The text of the xterm.js rows on the page, one line per row. */
const screen = (page: Page) =>
  page.evaluate(() => [...document.querySelectorAll('.xterm-rows > div')].map((d) => d.textContent).join('\n'));

describe("a VM's terminal and serial console in the web console", { skip }, () => {
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base = '';
  const pageErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `vm-${name}.png`), fullPage: true });
  // chromium aborts navigations and connections in flight when the host's interfaces change (ERR_NETWORK_CHANGED:
  // instances of other tests on this host starting and stopping); those are tried again, anything else fails
  const aborted = (e: unknown) => /ERR_NETWORK_CHANGED/.test(String(e));
  const loggedIn = async () => (await page.context().cookies()).some((c) => c.name === 'hull_session');
  /** Log in through a fresh link of `hull console url` (a link works once: an aborted one may have been used). */
  const logIn = async () => {
    for (let tries = 1; !(await loggedIn()); tries++) {
      try {
        await page.goto((await root.ok('console', 'url')).trim());
      } catch (e) {
        if (!aborted(e) || tries >= 5) throw e;
        console.log(`# the login was aborted (${String(e).split('\n')[0]}); again`);
      }
    }
    for (let tries = 1; ; tries++) {
      try {
        await page.goto(`${base}/`);
        return;
      } catch (e) {
        if (!aborted(e) || tries >= 5) throw e;
      }
    }
  };
  /** Open a terminal tab and wait for its socket; a handshake the browser aborted is opened again. */
  const openTerminal = async (tab: string) => {
    for (let tries = 1; ; tries++) {
      await page.getByRole('tab', { name: tab, exact: true }).click();
      await page.locator('.xterm-helper-textarea').waitFor({ state: 'attached' });
      const status = page.getByRole('status').filter({ hasText: /: (connected|closed|error|exited|ended)/ });
      await status.waitFor();
      const text = (await status.textContent()) ?? '';
      if (/: connected$/.test(text)) return;
      if (tries >= 3) assert.fail(`the ${tab} tab did not connect: ${text}`);
      console.log(`# the ${tab} tab did not connect (${text}); again`);
      await page.getByRole('tab', { name: 'Configuration', exact: true }).click();
    }
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const port = await freePort();
    base = `https://127.0.0.1:${port}`;
    daemon = await startDaemon(root, socket, ['--listen', `127.0.0.1:${port}`]);
    await waitFor(
      'the console listener to answer',
      async () => (await status(port, '/hull/v1/session')) > 0,
      20_000,
      50,
    );
    // the first image VM of a root boots cold and saves the template; under TCG that takes a while
    const run = await root.hullWith(
      { timeoutMs: 300_000 },
      'run',
      '-d',
      '--isolation',
      'vm',
      '--name',
      'v',
      'busybox',
      'sleep',
      '600',
    );
    assert.equal(run.code, 0, run.stderr);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--ignore-certificate-errors'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: true });
    context.setDefaultTimeout(30_000);
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('requestfailed', (r) => console.log(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
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

  test('logs in and opens the running VM: its terminal and serial console tabs', async () => {
    await logIn();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('link', { name: 'Instances', exact: true }).click();
    const row = page.locator('tr[data-instance="v"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /running.*VM.*busybox/);
    await page.getByRole('link', { name: 'v', exact: true }).click();
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor();
    for (const tab of ['Terminal', 'Serial console']) await page.getByRole('tab', { name: tab, exact: true }).waitFor();
  });

  test("the terminal: a shell in the VM through hull's agent; the file it writes is there for hull exec", async () => {
    await openTerminal('Terminal');
    await page.locator('.term-box').click();
    // the quotes keep the echoed command line from matching the output
    await page.keyboard.type(`echo vm-console > /tmp/from-console && echo wr''itten\n`);
    await page.waitForFunction(() =>
      /(^|\s)written(\s|$)/m.test(
        [...document.querySelectorAll('.xterm-rows > div')].map((d) => d.textContent).join('\n'),
      ),
    );
    assert.equal((await root.ok('exec', 'v', 'cat', '/tmp/from-console')).trim(), 'vm-console');
    await shot('terminal');
  });

  test("the serial console: the guest's ttyS0, both ways", async () => {
    await openTerminal('Serial console');
    // an image VM's kernel boots quietly (and this one was restored from a template): what the guest writes to
    // its serial port now is what the tab shows, and the page says so
    assert.match((await page.locator('[data-hint="serial"]').textContent()) ?? '', /ttyS0.*Terminal/s);
    await root.ok('exec', 'v', 'sh', '-c', 'echo "from the gu""est" > /dev/ttyS0');
    await waitFor("the guest's line on the serial console", async () => /from the guest/.test(await screen(page)));
    // nothing in an image VM reads its serial port; a reader started here gets the line typed in the browser (the
    // port drops input while nobody has it open: the reader says when it has it open)
    const reader = root.hullWith(
      { timeoutMs: 120_000 },
      'exec',
      'v',
      'sh',
      '-c',
      'exec 3</dev/ttyS0; touch /tmp/serial-open; read -r line <&3; echo "$line" > /tmp/from-serial',
    );
    await waitFor(
      'the reader to open ttyS0',
      async () => (await root.hull('exec', 'v', 'test', '-e', '/tmp/serial-open')).code === 0,
      30_000,
      200,
    );
    await page.locator('.term-box').click();
    await page.keyboard.type('typed-on-serial\r');
    const r = await reader;
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await root.ok('exec', 'v', 'cat', '/tmp/from-serial')).trim(), 'typed-on-serial');
    // the guest's tty echoed it
    await waitFor('the echo of the typed line', async () => /typed-on-serial/.test(await screen(page)));
    await shot('serial');
  });

  test('stops and removes the VM from its page', async () => {
    await page.getByRole('tab', { name: 'Configuration', exact: true }).click();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('h1 .badge', { hasText: 'exited' }).waitFor({ timeout: 120_000 });
    await shot('stopped');
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await page.waitForURL(`${base}/instances`);
    await page.locator('tr[data-instance="v"]').waitFor({ state: 'detached' });
    assert.equal((await root.ok('ps', '-a', '-q')).trim(), '');
    assert.deepEqual(pageErrors, []);
  });
});
