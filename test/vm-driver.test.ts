/**
 * The VM driver against real QEMU (TCG here: each boot takes 3–4 s, so the tests are few and each boots
 * once): run to exit through the log file, a long-running VM's exec/tty/balloon/stats/pause/kill, and the
 * faults (command not found, agent silent, QEMU killed from outside). Pure parts (cpio, modules.dep,
 * frames, log records, QEMU argv) are checked without booting.
 *
 * The guest kernel is fetched once into $HULL_VM_CACHE (default /var/tmp/hull-test-vm-cache) and shared by
 * every test run; each test's instances live in a private root and are removed, also on failure.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { CommandNotFoundError } from '../src/common/errors.js';
import type { InstanceConfig, InstanceContext } from '../src/common/instance.js';
import { readLogs, type LogLine } from '../src/container/logs.js';
import { VmBootError, VmDriver, vmVolumes } from '../src/vm/driver.js';
import { moduleLoadOrder, parseModulesDep, readCpio, writeCpio } from '../src/vm/initramfs.js';
import { formatRecords, LogFileWriter } from '../src/vm/logfile.js';
import { qemuArgs, virtiofsdSocketPath } from '../src/vm/machine.js';
import { encodeFrame, encodeSpec, FrameDecoder } from '../src/vm/protocol.js';
import { parseLogRecord } from '../src/container/logs.js';
import { probeAccel } from '../src/host/qemu.js';
import { ensureDefaultKernel } from '../src/vm/kernel.js';

process.env.HULL_VM_CACHE ??= '/var/tmp/hull-test-vm-cache';

const APPLETS = ['sh', 'echo', 'cat', 'sleep', 'true', 'ls', 'tty', 'stty', 'ps', 'grep', 'uname', 'hostname', 'id'];

function makeLayer(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n');
  return dir;
}

function config(command: string[], patch: Partial<InstanceConfig> = {}): InstanceConfig {
  return {
    image: 'busybox',
    imageId: 'sha256:' + 'b'.repeat(64),
    command,
    env: ['PATH=/bin', 'GREETING=hi'],
    workdir: '/',
    user: '',
    hostname: 'vmhost',
    tty: false,
    stdin: false,
    mounts: [],
    readOnly: false,
    resources: { memory: 256 * 1024 * 1024 },
    stopSignal: 'SIGTERM',
    stopTimeout: 10,
    restart: { name: 'no', maxRetries: 0 },
    autoRemove: false,
    labels: {},
    network: 'none',
    vm: { accel: 'auto' },
    ...patch,
  } as InstanceConfig;
}

class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

const base = mkdtempSync('/tmp/hull-test-vm-');
const layer = makeLayer(join(base, 'layer'));
const root = join(base, 'root');
const driver = new VmDriver();
const made: InstanceContext[] = [];
let seq = 0;

function newCtx(command: string[], patch: Partial<InstanceConfig> = {}): InstanceContext {
  const id = `${process.pid.toString(16)}${(seq++).toString(16)}`.padEnd(64, 'a');
  const ctx: InstanceContext = {
    id,
    name: `vmt${seq}`,
    root,
    dir: join(root, 'containers', id),
    config: config(command, patch),
    layers: [layer],
    exitCommand: [],
  };
  made.push(ctx);
  return ctx;
}

async function logLines(ctx: InstanceContext): Promise<LogLine[]> {
  const out: LogLine[] = [];
  await readLogs(driver.logPath(ctx), {}, (l) => out.push(l));
  return out;
}

function qemuProcessesOf(dir: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (argv.includes(dir) && (argv.includes('qemu-system') || argv.includes('monitor')))
        found.push(`${p} ${argv.replace(/\0/g, ' ').slice(0, 120)}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

after(async () => {
  for (const ctx of made) await driver.delete(ctx).catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
});

describe('VM building blocks (no boot)', () => {
  test('cpio newc archives round-trip, padded to 4 bytes, with a trailer', () => {
    const a = writeCpio([
      { name: 'hull', mode: 0o040755 },
      { name: 'init', mode: 0o100755, data: Buffer.from('abc') },
      { name: 'link', mode: 0o120777, target: 'init' },
    ]);
    assert.equal(a.length % 4, 0);
    assert.ok(a.includes(Buffer.from('TRAILER!!!')));
    const back = readCpio(a);
    assert.deepEqual(
      back.map((e) => e.name),
      ['hull', 'init', 'link'],
    );
    assert.equal(back[1]!.data!.toString(), 'abc');
    assert.equal(back[2]!.target, 'init');
    // reproducible: equal input, equal bytes
    assert.deepEqual(
      writeCpio([{ name: 'init', mode: 0o100755, data: Buffer.from('abc') }]),
      writeCpio([{ name: 'init', mode: 0o100755, data: Buffer.from('abc') }]),
    );
  });

  test('modules load dependencies first, each once', () => {
    const dep = parseModulesDep(
      [
        'kernel/drivers/virtio/virtio.ko:',
        'kernel/drivers/virtio/virtio_ring.ko:',
        'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
        'kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
      ].join('\n'),
    );
    assert.deepEqual(moduleLoadOrder(dep, ['virtio_blk', 'virtio-rng']), [
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/drivers/char/hw_random/virtio-rng.ko',
    ]);
    assert.throws(() => moduleLoadOrder(dep, ['nope']), /no module nope/);
  });

  test('frames split across reads decode whole; specs are NUL-separated pairs', () => {
    const f = Buffer.concat([
      encodeFrame('O', 0, Buffer.from('hello')),
      encodeFrame('Z', 7, Buffer.from([3, 0, 0, 0])),
    ]);
    const d = new FrameDecoder();
    const got = [...d.push(f.subarray(0, 5)), ...d.push(f.subarray(5, 20)), ...d.push(f.subarray(20))];
    assert.deepEqual(
      got.map((x) => [x.type, x.session, x.payload.toString('hex')]),
      [
        ['O', 0, Buffer.from('hello').toString('hex')],
        ['Z', 7, '03000000'],
      ],
    );
    assert.equal(
      encodeSpec({ args: ['sh', '-c', 'x'], env: ['A=1'], tty: true }).toString(),
      'arg\0sh\0arg\0-c\0arg\0x\0env\0A=1\0tty\x001\0',
    );
  });

  test('the log writer writes records the container log reader parses', () => {
    const lines = formatRecords('stderr', 'one\ntwo\npart')
      .trim()
      .split('\n')
      .map((l) => parseLogRecord(l)!);
    assert.deepEqual(
      lines.map((r) => [r.stream, r.partial, r.text]),
      [
        ['stderr', false, 'one'],
        ['stderr', false, 'two'],
        ['stderr', true, 'part'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(lines[0]!.time)));
  });

  test("the log writer: docker's json-file lines and max-size/max-file rotation, read back in order", async () => {
    const dir = mkdtempSync('/tmp/hull-vm-logfile-');
    try {
      const p = join(dir, 'ctr.log');
      const w = new LogFileWriter(p, { format: 'json-file', maxSize: 100, maxFile: 3 });
      for (let i = 0; i < 20; i++) w.write(i % 2 ? 'stderr' : 'stdout', Buffer.from(`line ${i}\n`));
      w.write('stdout', Buffer.from('no newline'));
      w.close();
      const first = JSON.parse(readFileSync(p, 'utf8').split('\n')[0]!) as Record<string, string>;
      assert.deepEqual(Object.keys(first), ['log', 'stream', 'time']);
      assert.match(first.time!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/, "Go's RFC3339Nano");
      // three files at most (the current one and two rotated), each rotated when it had reached max-size
      assert.deepEqual(readdirSync(dir).sort(), ['ctr.log', 'ctr.log.1', 'ctr.log.2']);
      for (const f of ['ctr.log.1', 'ctr.log.2']) {
        const size = statSync(join(dir, f)).size;
        assert.ok(size >= 100 && size < 200, `${f}: ${size} bytes`);
      }
      const got: string[] = [];
      await readLogs(p, {}, (l) => got.push(l.text));
      const n = got.length;
      assert.ok(n > 3 && n < 20, `older lines dropped with the oldest file (${n} left)`);
      assert.deepEqual(
        got,
        [...Array.from({ length: n - 1 }, (_, k) => `line ${20 - n + 1 + k}\n`), 'no newline'],
        'in order, none missing in between',
      );
      // max-file 1: the full file is replaced
      const q = join(dir, 'one.log');
      const w1 = new LogFileWriter(q, { maxSize: 50 });
      for (let i = 0; i < 10; i++) w1.write('stdout', Buffer.from(`line ${i}\n`));
      w1.close();
      assert.ok(!existsSync(`${q}.1`));
      assert.ok(statSync(q).size < 100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('QEMU command lines: microvm with virtio-mmio devices, or pc with IDE and a UART channel', () => {
    const o = {
      accel: 'tcg' as const,
      kernel: 'k',
      initrd: 'i',
      disk: 'd.qcow2',
      diskFormat: 'qcow2' as const,
      memoryMiB: 256,
      cpus: 2,
      name: 'n',
      qmpSocket: 'q',
      agentSocket: 'a',
      consoleSocket: 'c',
    };
    const v = qemuArgs({ ...o, deviceModel: 'virtio' }).join(' ');
    assert.match(v, /-M microvm/);
    assert.match(v, /virtio-blk-device/);
    assert.match(v, /virtio-balloon-device/);
    assert.match(v, /tsc_early_khz=/);
    const e = qemuArgs({ ...o, deviceModel: 'emulated' }).join(' ');
    assert.match(e, /-M pc/);
    assert.match(e, /ide-hd/);
    assert.match(e, /hull\.chan=\/dev\/ttyS1/);
    assert.doesNotMatch(e, /virtio/);
    assert.doesNotMatch(v, /memory-backend/, 'guest RAM is a shared memfd only with volumes');
  });

  test('volumes: virtiofs shares on a shared memfd, tmpfs and bind specs for the agent, parents first', () => {
    const o = {
      accel: 'tcg' as const,
      kernel: 'k',
      initrd: 'i',
      disk: 'd.qcow2',
      diskFormat: 'qcow2' as const,
      memoryMiB: 256,
      cpus: 2,
      name: 'n',
      qmpSocket: 'q',
      agentSocket: 'a',
      consoleSocket: 'c',
      shares: [{ socket: 'vfs-0.sock', tag: 'hullvol0' }],
    };
    const v = qemuArgs({ ...o, deviceModel: 'virtio' }).join(' ');
    assert.match(v, /-object memory-backend-memfd,id=mem,size=256M,share=on/);
    assert.match(v, /-M microvm,[^ ]*,memory-backend=mem/);
    assert.match(v, /-chardev socket,id=vfs0,path=vfs-0\.sock -device vhost-user-fs-device,chardev=vfs0,tag=hullvol0/);
    assert.match(v, /virtio-mmio\.force-legacy=false/);
    const e = qemuArgs({ ...o, deviceModel: 'emulated' }).join(' ');
    assert.match(e, /-M pc,memory-backend=mem/);
    assert.match(e, /vhost-user-fs-pci,chardev=vfs0,tag=hullvol0/);
    const { shares, guestMounts } = vmVolumes([
      { type: 'bind', source: base, target: '/data/sub/', readonly: true },
      { type: 'tmpfs', target: '/scratch', options: ['size=8m'] },
      { type: 'bind', source: base, target: '/data', readonly: false },
    ]);
    assert.deepEqual(
      shares.map((x) => [x.socket, x.tag, x.readonly]),
      [
        ['vfs-0.sock', 'hullvol0', false],
        ['vfs-1.sock', 'hullvol1', true],
      ],
    );
    assert.deepEqual(
      guestMounts.map((m) => m.target),
      ['/scratch', '/data', '/data/sub'],
    );
    assert.equal(
      encodeSpec({ args: ['x'], env: [], mounts: guestMounts }).toString(),
      'arg\0x\0mount\0tmpfs size=8m rw /scratch\0mount\0virtiofs hullvol0 rw /data\0mount\0virtiofs hullvol1 ro /data/sub\0',
    );
    assert.throws(
      () => vmVolumes([{ type: 'bind', source: join(base, 'nope'), target: '/d', readonly: false }]),
      /does not exist/,
    );
    writeFileSync(join(base, 'file'), '');
    assert.throws(
      () => vmVolumes([{ type: 'bind', source: join(base, 'file'), target: '/d', readonly: false }]),
      /directories only/,
    );
  });

  test('virtiofsd socket paths: absolute when they fit in sun_path, else unique per instance, so two VMs never share a pid file', async (t) => {
    const short = join('/r/containers', 'a'.repeat(64));
    assert.equal(virtiofsdSocketPath(short, 'vfs-0.sock'), join(short, 'vfs-0.sock'));
    const dirs = ['a', 'b'].map((c) => join(base, 'r'.repeat(60), 'containers', c.repeat(64)));
    const paths = dirs.map((d) => virtiofsdSocketPath(d, 'vfs-0.sock'));
    for (const [i, p] of paths.entries()) {
      assert.ok(Buffer.byteLength(p) < 108, p);
      assert.equal(
        resolve(dirs[i]!, p),
        join(dirs[i]!, 'vfs-0.sock'),
        "relative to the instance dir, the daemon's cwd",
      );
    }
    assert.notEqual(paths[0], paths[1]);
    // the real daemon: its pid file is named after the path it is given, and both run at once
    const bin = ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd', '/usr/lib/virtiofsd'].find((c) => existsSync(c));
    if (!bin) return t.skip('virtiofsd is not installed');
    const share = join(base, 'share');
    mkdirSync(share, { recursive: true });
    const daemons: ChildProcess[] = [];
    const pidFiles = paths.map((p) => join('/run/virtiofsd', `${p.replace(/\//g, '.')}.pid`));
    try {
      for (const [i, d] of dirs.entries()) {
        mkdirSync(d, { recursive: true });
        const v = spawn(bin, [`--socket-path=${paths[i]}`, '-o', `source=${share}`], {
          cwd: d,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        daemons.push(v);
        let err = '';
        v.stderr!.on('data', (b: Buffer) => {
          err += b.toString();
        });
        // ready when its socket is there (what the monitor waits for too)
        while (!existsSync(join(d, 'vfs-0.sock'))) {
          assert.ok(v.exitCode === null && v.signalCode === null, `virtiofsd ${i} exited: ${err}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      for (const f of pidFiles) assert.ok(existsSync(f), `${f} exists`);
      assert.ok(
        daemons.every((v) => v.exitCode === null && v.signalCode === null),
        'both daemons run',
      );
    } finally {
      await Promise.all(
        daemons.map(
          (v) =>
            new Promise((r) => {
              if (v.exitCode !== null || v.signalCode !== null) return r(null);
              v.once('exit', r);
              v.kill('SIGKILL');
            }),
        ),
      );
      for (const f of pidFiles) rmSync(f, { force: true });
    }
  });

  test("a kernel package that cannot be downloaded: apt-get's reason and what to do, no half-made cache", async () => {
    const bin = join(base, 'fake-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, 'apt-get'),
      '#!/bin/sh\n[ "$1" = update ] && exit 0\necho "E: Unable to locate package $3" >&2\nexit 100\n',
      { mode: 0o755 },
    );
    const cache = join(base, 'empty-cache');
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await assert.rejects(
        ensureDefaultKernel(cache),
        (e: Error) => /Unable to locate package linux-image-cloud-amd64/.test(e.message) && /--kernel/.test(e.message),
      );
    } finally {
      process.env.PATH = path;
    }
    assert.deepEqual(readdirSync(join(cache, 'kernels')), [], 'no temp dirs left');
  });

  test('the accelerator probe gives a reason', () => {
    const p = probeAccel();
    assert.ok(p.reason.length > 0);
    // hardware KVM: /dev/kvm from kvm_intel or kvm_amd (kvm_pvm's /dev/kvm does not count: see docs/vm.md)
    const hwKvm = existsSync('/dev/kvm') && (existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd'));
    assert.equal(p.accel, hwKvm ? 'kvm' : 'tcg', p.reason);
  });

  test('pruneImageCaches drops the root disks of images that are gone, keeps the rest', async () => {
    const root = mkdtempSync('/tmp/hull-test-vmdisks-');
    try {
      const disks = join(root, 'vm', 'disks');
      mkdirSync(disks, { recursive: true });
      const keep = 'sha256:' + 'a'.repeat(64);
      const gone = 'sha256:' + 'b'.repeat(64);
      for (const id of [keep, gone]) writeFileSync(join(disks, `${id.slice(7)}.ext4`), Buffer.alloc(8192, 1));
      const freed = await new VmDriver().pruneImageCaches(root, new Set([keep]));
      assert.ok(freed >= 8192);
      assert.deepEqual(readdirSync(disks), [`${'a'.repeat(64)}.ext4`]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('VM driver with QEMU', { timeout: 600_000 }, () => {
  test('runs a command to its exit: guest kernel, stdout and stderr in the log, exit code', async () => {
    const ctx = newCtx(['sh', '-c', 'uname -r; echo "$GREETING from $(hostname)"; echo oops >&2; exit 3']);
    const res = await driver.create(ctx);
    assert.ok(res.supervisorPid > 0 && res.pid > 0);
    await driver.start(ctx);
    const info = await driver.waitExit(ctx, AbortSignal.timeout(120_000));
    assert.equal(info.exitCode, 3);
    const lines = await logLines(ctx);
    const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
    assert.match(out[0]!, /^\d+\.\d+\.\d+.*\n$/, 'first line: the guest kernel release');
    assert.notEqual(out[0]!.trim(), readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), 'not the host kernel');
    assert.equal(out[1], 'hi from vmhost\n');
    assert.deepEqual(
      lines.filter((l) => l.stream === 'stderr').map((l) => l.text),
      ['oops\n'],
    );
    await driver.cleanupAfterExit(ctx);
    assert.deepEqual(qemuProcessesOf(ctx.dir), []);
    assert.ok(existsSync(join(ctx.dir, 'disk.qcow2')), 'the disk stays for a restart');
    await driver.delete(ctx);
    assert.ok(!existsSync(ctx.dir));
  });

  test('a running VM: exec (exit codes, tty, not found), balloon, stats, pause, top, SIGTERM', async () => {
    const ctx = newCtx(['sleep', '1000']);
    await driver.create(ctx);
    await driver.start(ctx);
    assert.equal((await driver.status(ctx)).status, 'running');

    const out = new Sink();
    const err = new Sink();
    const code = await driver.exec(
      ctx,
      {
        command: ['sh', '-c', 'echo $GREETING $X; grep -c processor /proc/cpuinfo; exit 5'],
        env: ['X=there'],
        tty: false,
        stdin: false,
        privileged: false,
        detach: false,
      },
      { stdin: null, stdout: out, stderr: err },
    );
    assert.equal(code, 5);
    assert.equal(out.data, 'hi there\n1\n');

    const tty = new Sink();
    assert.equal(
      await driver.exec(
        ctx,
        { command: ['sh', '-c', 'tty; stty size'], env: [], tty: true, stdin: false, privileged: false, detach: false },
        { stdin: null, stdout: tty, stderr: tty, size: () => ({ rows: 33, cols: 101 }) },
      ),
      0,
    );
    assert.match(tty.data, /\/dev\/pts\/\d+/);
    assert.match(tty.data, /33 101/);

    await assert.rejects(
      driver.exec(
        ctx,
        { command: ['no-such-program'], env: [], tty: false, stdin: false, privileged: false, detach: false },
        { stdin: null, stdout: new Sink(), stderr: new Sink() },
      ),
      CommandNotFoundError,
    );

    // the balloon shrinks the guest's RAM; growing past the boot size is refused
    await driver.update(ctx, { memory: 160 * 1024 * 1024 });
    await assert.rejects(driver.update(ctx, { memory: 1024 * 1024 * 1024 }), /cannot grow|not grow/);
    const st = await driver.stats(ctx);
    assert.equal(st.memoryLimit, 160 * 1024 * 1024);
    assert.ok(st.cpuUsageNs > 0 && st.memoryUsage > 0 && st.blkioRead > 0, JSON.stringify(st));
    assert.equal(st.pids, 1, 'the guest runs sleep only (the agent and kernel threads are not counted)');

    const top = await driver.top(ctx, []);
    assert.ok(
      top.rows.some((r) => r.join(' ').includes('sleep 1000')),
      JSON.stringify(top.rows),
    );
    assert.ok(!top.rows.some((r) => r.join(' ').includes('kthreadd')), 'kernel threads are left out');

    await driver.pause(ctx);
    assert.equal((await driver.status(ctx)).status, 'paused');
    await driver.resume(ctx);

    await driver.kill(ctx, 'SIGTERM');
    const info = await driver.waitExit(ctx, AbortSignal.timeout(30_000));
    assert.equal(info.exitCode, 143);
    await driver.delete(ctx);
    assert.deepEqual(qemuProcessesOf(ctx.dir), []);
  });

  test('faults: command not found, agent silent (console tail), QEMU killed from outside', async () => {
    const missing = newCtx(['/bin/nope']);
    await driver.create(missing);
    await assert.rejects(driver.start(missing), CommandNotFoundError);
    await driver.delete(missing);
    assert.deepEqual(qemuProcessesOf(missing.dir), []);

    const slow = newCtx(['true']);
    process.env.HULL_VM_BOOT_TIMEOUT = '0.3';
    try {
      await driver.create(slow);
    } finally {
      delete process.env.HULL_VM_BOOT_TIMEOUT;
    }
    await assert.rejects(
      driver.start(slow),
      (e: Error) => e instanceof VmBootError && /did not answer within/.test(e.message),
    );
    await driver.delete(slow);
    assert.deepEqual(qemuProcessesOf(slow.dir), []);

    const killed = newCtx(['sleep', '1000']);
    await driver.create(killed);
    await driver.start(killed);
    const qemuPid = Number(readFileSync(join(killed.dir, 'qemu.pid'), 'utf8'));
    process.kill(qemuPid, 'SIGKILL');
    const info = await driver.waitExit(killed, AbortSignal.timeout(30_000));
    assert.equal(info.exitCode, 137, JSON.stringify(info) + readFileSync(join(killed.dir, 'monitor.log'), 'utf8'));
    assert.match(info.reason ?? '', /QEMU was killed by SIGKILL/);
    await driver.delete(killed);
    assert.deepEqual(qemuProcessesOf(killed.dir), []);
    assert.ok(!existsSync(killed.dir));
  });
});
