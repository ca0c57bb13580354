/**
 * Graphical displays (`--display`): a VM's screen (a graphics card, QEMU's VNC server) and graphical containers
 * (an X11 application on an Xvnc of its own), read with a small RFB client (test/helpers/rfb.ts) through the unix
 * socket `hull vnc` prints, the TCP port `hull vnc --listen` forwards, and the daemon's
 * /hull/v1/instances/{id}/vnc WebSocket (raw RFB in binary frames, as noVNC speaks it).
 *
 * The graphical image is made from Debian's packages (mmdebstrap --variant=minbase --include=x11-apps bookworm,
 * then hull import), cached as /var/cache/hull-test/x11-root-<key>.tar ($HULL_TEST_CACHE) per package list.
 * The VM part boots one VM under TCG (emulated device model: a PC with std VGA).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import WebSocket, { createWebSocketStream } from 'ws';
import { HullRoot, DIST, waitFor } from './helpers/hull.js';
import { type Daemon, startDaemon } from './helpers/daemon.js';
import { differingPixels, nonBlank, RfbClient } from './helpers/rfb.js';
import { x11Root } from './helpers/x11.js';
import { connectUnix } from '../src/host/unixsock.js';
import { findExecutable } from '../src/host/probe.js';
import { VmDriver } from '../src/vm/driver.js';
import { qemuArgs } from '../src/vm/machine.js';

const VM_CACHE = process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache';

const root = new HullRoot('display', { HULL_VM_CACHE: VM_CACHE });
const work = mkdtempSync('/tmp/hull-test-display-sock-');
const socket = join(work, 'hull.sock');
let daemon: Daemon | undefined;
after(async () => {
  await stopDaemon();
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** Every live Xvnc working in one of this root's instance dirs. */
function xvncsOfRoot(): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      // argv[0], not /proc/N/exe: Debian's Xvnc is a link to Xtigervnc
      const argv0 = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (!/(^|\/)Xvnc$/.test(argv0) || readFileSync(`/proc/${n}/stat`, 'utf8').includes(') Z ')) continue;
      if (readlinkSync(`/proc/${n}/cwd`).startsWith(join(root.dir, 'containers') + '/')) out.push(Number(n));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

/** The socket `hull vnc NAME` prints. */
async function vncSocket(name: string): Promise<string> {
  const out = (await root.ok('vnc', name)).trim();
  assert.match(out, /^unix:\//);
  return out.slice('unix:'.length);
}

/** The screen, once it shows something (an application draws a moment after it starts; a VM boots). */
async function screenOf(open: () => Promise<RfbClient>, timeoutMs = 30_000): Promise<{ rfb: RfbClient; fb: Buffer }> {
  const rfb = await open();
  let fb: Buffer = Buffer.alloc(0);
  await waitFor('a non-blank screen', async () => nonBlank((fb = await rfb.framebuffer())), timeoutMs, 200);
  return { rfb, fb };
}

/** A WebSocket to the daemon's VNC endpoint, as noVNC opens it (subprotocol binary). */
function vncWebSocket(ref: string): WebSocket {
  return new WebSocket(`ws+unix://${socket}:/hull/v1/instances/${ref}/vnc`, ['binary']);
}

async function rfbOverWebSocket(ref: string): Promise<RfbClient> {
  const ws = vncWebSocket(ref);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  assert.equal(ws.protocol, 'binary', 'the server accepts the binary subprotocol');
  return RfbClient.connect(createWebSocketStream(ws));
}

/** The status of a refused upgrade and its error body. */
async function refusedUpgrade(ref: string): Promise<{ status: number; body: { code: string; message: string } }> {
  const ws = vncWebSocket(ref);
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error(`the upgrade for ${ref} was accepted`)));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        text += s;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    ws.once('error', () => undefined);
  });
}

function apiGet(path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'GET', path: `/hull/v1${path}` }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        text += s;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Stop the daemon (before a leak check: it is a hull process of the root). */
async function stopDaemon(): Promise<void> {
  if (!daemon) return;
  daemon.child.kill('SIGTERM');
  await daemon.exited;
  daemon = undefined;
}

const xvnc = findExecutable('Xvnc') ? false : 'Xvnc is not installed (tigervnc-standalone-server; scripts/setup.sh)';
const mmdebstrap = findExecutable('mmdebstrap') ? false : 'mmdebstrap is not installed: it makes the X11 image';
const qemu = findExecutable('qemu-system-x86_64') ? false : 'qemu-system-x86_64 is not installed';

describe('display settings', () => {
  test('defaults: a disk-image VM has a display, an image VM none; QEMU gets a graphics card and VNC on the socket', () => {
    const vm = new VmDriver();
    const env = { otherConfigs: () => [] };
    assert.equal(vm.configure({ disk: { path: '/x.qcow2', format: 'qcow2' } }, env).vm?.display, 'vnc');
    assert.equal(
      vm.configure({ disk: { path: '/x.qcow2', format: 'qcow2' }, display: 'none' }, env).vm?.display,
      'none',
    );
    assert.equal(vm.configure({}, env).vm?.display, undefined, 'an image VM: none');
    const base = {
      accel: 'tcg' as const,
      kernel: '',
      initrd: '',
      disk: 'disk.qcow2',
      diskFormat: 'qcow2' as const,
      memoryMiB: 256,
      cpus: 1,
      name: 'x',
      qmpSocket: 'qmp.sock',
      agentSocket: 'agent.sock',
      consoleSocket: 'console.sock',
    };
    const disk = qemuArgs({ ...base, deviceModel: 'virtio', mode: 'disk', vncSocket: 'vnc.sock' }).join(' ');
    assert.match(disk, /-vnc unix:vnc\.sock/);
    assert.match(disk, /-device virtio-vga/, 'virtio: a card that follows the client size');
    const emulated = qemuArgs({ ...base, deviceModel: 'emulated', vncSocket: 'vnc.sock' }).join(' ');
    assert.match(emulated, /-vnc unix:vnc\.sock .*-device VGA/);
    assert.doesNotMatch(qemuArgs({ ...base, deviceModel: 'emulated' }).join(' '), /-vnc/);
  });
});

describe('graphical containers (--display)', { skip: xvnc || mmdebstrap, timeout: 900_000 }, () => {
  let skip: string | false = false;
  before(async () => {
    const made = x11Root();
    if ('skip' in made) {
      skip = made.skip;
      return;
    }
    await root.ok('import', made.tar, 'x11');
    daemon = await startDaemon(root, socket);
  });

  test('an X11 app on its own display: drawn, DISPLAY and the socket in the container, resize', async (t) => {
    if (skip) return t.skip(skip);
    await root.ok('run', '-d', '--name', 'clock', '--network', 'none', '--display', 'x11', 'xclock', '-update', '1');
    const path = await vncSocket('clock');
    const { rfb, fb } = await screenOf(async () => RfbClient.connect(await connectUnix(path)));
    t.diagnostic(`xclock: ${rfb.width}x${rfb.height}, ${differingPixels(fb)} pixels drawn, desktop "${rfb.name}"`);
    assert.equal(`${rfb.width}x${rfb.height}`, '1280x800');
    assert.equal(await rfb.setDesktopSize(1024, 768), 0, 'a VNC client may resize the display');
    assert.equal(`${rfb.width}x${rfb.height}`, '1024x768');
    rfb.close();
    const env = await root.ok('exec', 'clock', 'sh', '-c', 'echo $DISPLAY; ls /tmp/.X11-unix');
    assert.deepEqual(env.trim().split('\n'), [':0', 'X0']);
    const h = (await root.inspect('clock')).Hull as Record<string, unknown>;
    assert.equal(h.Display, 'vnc');
    assert.equal(h.VncSocket, path);
  });

  test('two apps side by side, each with its own display and X server', async (t) => {
    if (skip) return t.skip(skip);
    await root.ok('run', '-d', '--name', 'eyes', '--network', 'none', '--display', 'x11', 'xeyes');
    const [a, b] = [await vncSocket('clock'), await vncSocket('eyes')];
    assert.notEqual(a, b);
    assert.equal(xvncsOfRoot().length, 2, 'one Xvnc each');
    const clock = await screenOf(async () => RfbClient.connect(await connectUnix(a)));
    const eyes = await screenOf(async () => RfbClient.connect(await connectUnix(b)));
    // separate X screens: the clock's was resized above, the eyes' keeps its own size and picture
    assert.equal(`${clock.rfb.width}x${clock.rfb.height}`, '1024x768');
    assert.equal(`${eyes.rfb.width}x${eyes.rfb.height}`, '1280x800');
    t.diagnostic(`pixels drawn: xclock ${differingPixels(clock.fb)}, xeyes ${differingPixels(eyes.fb)}`);
    clock.rfb.close();
    eyes.rfb.close();
  });

  test('hull vnc --listen forwards a loopback TCP port to the display while it runs', async (t) => {
    if (skip) return t.skip(skip);
    const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'vnc', 'eyes', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...root.env },
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.once('exit', (code) => reject(new Error(`hull vnc exited (${code}) before it listened`)));
      });
      const m = /^127\.0\.0\.1:(\d+)$/.exec(line);
      assert.ok(m, line);
      const tcp = connect(Number(m[1]), '127.0.0.1');
      const { rfb } = await screenOf(() => RfbClient.connect(tcp));
      rfb.close();
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });

  test('the daemon: RFB over the WebSocket; 404 without a display, 409 when stopped; display in the instance document', async (t) => {
    if (skip) return t.skip(skip);
    const { rfb, fb } = await screenOf(() => rfbOverWebSocket('clock'));
    t.diagnostic(`over the WebSocket: ${differingPixels(fb)} pixels drawn`);
    rfb.close();
    assert.deepEqual((await apiGet('/instances/clock')).json.display, { type: 'vnc' });
    await root.ok('create', '--name', 'plain', '--network', 'none', 'x11', 'true');
    assert.equal((await apiGet('/instances/plain')).json.display, null);
    const none = await refusedUpgrade('plain');
    assert.equal(none.status, 404);
    assert.equal(none.body.code, 'HULL_NOT_FOUND');
    assert.match(none.body.message, /has no display/);
    await root.ok('create', '--name', 'later', '--network', 'none', '--display', 'x11', 'xclock');
    const stopped = await refusedUpgrade('later');
    assert.equal(stopped.status, 409);
    assert.match(stopped.body.message, /not there: it is created/);
    await root.ok('rm', 'plain', 'later');
  });

  test('the X server follows the app: gone at stop, back at start, gone when the app exits and after rm', async (t) => {
    if (skip) return t.skip(skip);
    // a forwarder ends with the run whose display it forwards
    const fwd = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'vnc', 'eyes', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...root.env },
    });
    let fwdErr = '';
    fwd.stderr!.setEncoding('utf8').on('data', (s: string) => (fwdErr += s));
    const fwdExit = new Promise<number | null>((r) => fwd.once('exit', r));
    await new Promise<void>((resolve) => fwd.stdout!.once('data', () => resolve()));
    await root.ok('stop', '-t', '1', 'eyes');
    assert.equal(await fwdExit, 0);
    assert.match(fwdErr, /eyes stopped; its display is gone/);
    assert.equal(xvncsOfRoot().length, 1, 'only the clock keeps its X server');
    const refused = await root.hull('vnc', 'eyes');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /not there: it is exited/);
    await root.ok('start', 'eyes');
    const { rfb } = await screenOf(async () => RfbClient.connect(await connectUnix(await vncSocket('eyes'))));
    rfb.close();
    // the app ends by itself: its display goes with it
    const r = await root.hull('run', '--rm', '--network', 'none', '--display', 'x11', 'sh', '-c', 'echo $DISPLAY');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), ':0');
    await root.ok('rm', '-f', 'clock', 'eyes');
    assert.deepEqual(xvncsOfRoot(), [], 'no Xvnc left');
  });

  test('a lost hull.db: recover keeps the X server of a container it rebuilds, stops the one of a container it cannot', async (t) => {
    if (skip) return t.skip(skip);
    await stopDaemon();
    const keep = (
      await root.ok('run', '-d', '--name', 'keep', '--network', 'none', '--display', 'x11', 'xeyes')
    ).trim();
    const doomed = (
      await root.ok('run', '-d', '--name', 'doomed', '--network', 'none', '--display', 'x11', 'xeyes')
    ).trim();
    assert.equal(xvncsOfRoot().length, 2);
    rmSync(join(root.dir, 'containers', doomed, 'instance.json'));
    for (const f of ['', '-wal', '-shm']) rmSync(join(root.dir, `hull.db${f}`), { force: true });
    const out = await root.ok('system', 'recover');
    assert.match(out, new RegExp(`^recovered ${keep.slice(0, 12)} keep running$`, 'm'));
    assert.match(out, new RegExp(`^removed ${doomed.slice(0, 12)}: it has no saved record`, 'm'));
    assert.equal(xvncsOfRoot().length, 1, "the doomed container's Xvnc is stopped");
    const { rfb } = await screenOf(async () => RfbClient.connect(await connectUnix(await vncSocket('keep'))));
    rfb.close();
    await root.ok('rm', '-f', 'keep');
    assert.deepEqual(xvncsOfRoot(), []);
  });

  test('leaves nothing behind (no Xvnc, no sockets)', async () => {
    await stopDaemon();
    await root.cleanupAndCheck();
  });
});

describe('a VM with a display', { skip: qemu, timeout: 600_000 }, () => {
  test('the virtio model (a microvm) has no display: refused with what to do', async () => {
    const r = await root.hull('create', '--isolation', 'vm', '--display', 'vnc', 'busybox', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /microvm, which has no display: add --device-model emulated/);
  });

  test('the screen (SeaBIOS, the boot) over VNC, directly and through the daemon; Ctrl-Alt-Del reaches the guest', async (t) => {
    await root.hullWith(
      { timeoutMs: 300_000 },
      'run',
      '-d',
      '--name',
      'vm',
      '--isolation',
      'vm',
      '--device-model',
      'emulated',
      '--display',
      'vnc',
      'busybox',
      'sleep',
      '600',
    );
    const h = (await root.inspect('vm')).Hull as Record<string, unknown>;
    assert.equal(h.Display, 'vnc');
    const path = await vncSocket('vm');
    assert.equal(h.VncSocket, path);
    const { rfb, fb } = await screenOf(async () => RfbClient.connect(await connectUnix(path)), 120_000);
    t.diagnostic(`VM screen ${rfb.width}x${rfb.height} "${rfb.name}": ${differingPixels(fb)} pixels drawn`);
    assert.match(rfb.name, /hull-vm/);
    daemon ??= await startDaemon(root, socket);
    assert.deepEqual((await apiGet('/instances/vm')).json.display, { type: 'vnc' });
    const viaWs = await screenOf(() => rfbOverWebSocket('vm'));
    viaWs.rfb.close();
    // Ctrl-Alt-Del as noVNC sends it: the guest kernel restarts (it has no init that turns that off), and
    // QEMU's -no-reboot ends the VM
    rfb.ctrlAltDel();
    const w = await root.hullWith({ timeoutMs: 120_000 }, 'wait', 'vm');
    assert.equal(w.code, 0, w.stderr);
    rfb.close();
    await root.ok('rm', '-f', 'vm');
  });

  test('a disk-image VM has a display by default: the firmware on screen, a resize forwarded to its virtio-vga', async (t) => {
    // a disk that boots nothing: SeaBIOS says so on the screen, which is all this needs
    const disk = join(work, 'blank.qcow2');
    assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']).status, 0);
    await root.ok('vm', 'create', '--disk', disk, '--name', 'desk', '--start');
    const h = (await root.inspect('desk')).Hull as Record<string, unknown>;
    assert.equal(h.Display, 'vnc');
    const { rfb, fb } = await screenOf(
      async () => RfbClient.connect(await connectUnix(await vncSocket('desk'))),
      120_000,
    );
    t.diagnostic(`disk VM screen ${rfb.width}x${rfb.height}: ${differingPixels(fb)} pixels drawn`);
    // QEMU hands a client's SetDesktopSize to a card that can follow it (status 4: forwarded to the guest)
    assert.equal(await rfb.setDesktopSize(1024, 768), 4);
    rfb.close();
    await root.ok('rm', '-f', 'desk');
    await root.ok('vm', 'create', '--disk', disk, '--name', 'headless', '--display', 'none');
    const r = await root.hull('vnc', 'headless');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /headless has no display/);
    await root.ok('rm', '-f', 'headless');
  });

  test('leaves nothing behind', async () => {
    await stopDaemon();
    await root.cleanupAndCheck();
  });
});
