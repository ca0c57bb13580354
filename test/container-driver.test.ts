/**
 * The container driver against the real host: overlay mounts, conmon, runc and crun, cgroups.
 * Each test builds its containers from a busybox "image layer" made here, and removes every
 * container, mount, cgroup and temp dir it made, also on failure.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { CommandNotExecutableError, CommandNotFoundError, StateError } from '../src/common/errors.js';
import type { ContainerOptions, InstanceConfig, InstanceContext, StdioStreams } from '../src/common/instance.js';
import { ContainerDriver, mapRuntimeError, parsePsOutput } from '../src/container/driver.js';
import {
  normalizeLogTime,
  parseLogRecord,
  parseLogTime,
  readLogs,
  rotatedLogPaths,
  type LogLine,
} from '../src/container/logs.js';
import { readMountInfo } from '../src/host/mount.js';
import { probeRuntime } from '../src/host/probe.js';
import {
  blkioWeight,
  cpuQuota,
  existingCgroupDirs,
  expectedBlkioWeight,
  freezerState,
  memoryLimit,
  pidsMax,
} from './helpers/cgroup.js';
import { blkioWeightExpectation, describeBlkio } from './helpers/host.js';
import { waitFor } from './helpers/hull.js';

const BUSYBOX_APPLETS = [
  'sh',
  'echo',
  'cat',
  'sleep',
  'id',
  'true',
  'false',
  'ls',
  'tty',
  'stty',
  'ps',
  'touch',
  'stat',
  'head',
  'tail',
  'yes',
  'printf',
];

/** A busybox image layer: /bin/busybox with applet links, /etc/passwd and /etc/group. */
function makeLayer(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of BUSYBOX_APPLETS) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\ntty:x:5:\nnobody:x:65534:\n');
  return dir;
}

function baseConfig(runtime: string, command: string[]): InstanceConfig {
  return {
    image: 'busybox',
    imageId: 'sha256:test',
    command,
    env: ['PATH=/bin'],
    workdir: '/',
    user: '',
    hostname: '',
    tty: false,
    stdin: false,
    mounts: [],
    readOnly: false,
    resources: {},
    stopSignal: 'SIGTERM',
    stopTimeout: 10,
    restart: { name: 'no', maxRetries: 0 },
    autoRemove: false,
    labels: {},
    network: 'none',
    container: {
      runtime,
      privileged: false,
      capAdd: [],
      capDrop: [],
      noNewPrivileges: true,
      seccomp: 'default',
      userns: null,
      ulimits: [],
    },
  };
}

/** Collects what is written to it. */
class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

const base = mkdtempSync('/tmp/hull-test-driver-');
chmodSync(base, 0o711); // user namespace containers must be able to reach their rootfs
const layer = makeLayer(join(base, 'layer'));
const root = join(base, 'root');
const made: InstanceContext[] = [];
const driver = new ContainerDriver();
let seq = 0;

function newCtx(
  runtime: string,
  command: string[],
  patch: Partial<InstanceConfig> & Partial<ContainerOptions> = {},
  rootDir = root,
): InstanceContext {
  const id = `hulltest${process.pid}x${seq++}x${Date.now().toString(36)}`;
  const base = baseConfig(runtime, command);
  const { userns, ...common } = patch;
  const ctx: InstanceContext = {
    id,
    name: `t${seq}`,
    root: rootDir,
    dir: join(rootDir, 'containers', id),
    config: { ...base, ...common, container: { ...base.container!, ...(userns !== undefined ? { userns } : {}) } },
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

/** Processes whose command line mentions `text` (excluding ourselves). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(text)) found.push(`${p}: ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

/** Everything the driver could leave behind for one container. */
function leftovers(ctx: InstanceContext): string[] {
  const out: string[] = [];
  for (const m of readMountInfo()) if (m.mountPoint.startsWith(ctx.dir)) out.push(`mount ${m.mountPoint}`);
  for (const d of existingCgroupDirs(ctx.id)) out.push(`cgroup ${d}`);
  out.push(...processesMentioning(ctx.id).map((p) => `process ${p}`));
  if (existsSync(ctx.dir)) out.push(`dir ${ctx.dir}`);
  return out;
}

after(async () => {
  for (const ctx of made) await driver.delete(ctx).catch(() => undefined);
  // last resort for anything a failed test left: mounts under base, then the tree
  for (const m of readMountInfo()
    .filter((x) => x.mountPoint.startsWith(base))
    .reverse()) {
    spawnSync('umount', ['-l', m.mountPoint]);
  }
  rmSync(base, { recursive: true, force: true });
});

const ALL_RUNTIMES = ['runc', 'crun'];
const runtimes = ALL_RUNTIMES.filter((r) => probeRuntime(r).usable);
/** false when `rt` runs here, else the reason to skip its tests */
const runtimeSkip = (rt: string): string | false =>
  probeRuntime(rt).usable ? false : `${rt} cannot run here: ${probeRuntime(rt).reason}`;

for (const rt of ALL_RUNTIMES) {
  describe(`container driver with ${rt}`, { skip: runtimeSkip(rt) }, () => {
    test('create, start, wait: exit code and both streams in the log; the exit command runs', async () => {
      const ctx = newCtx(rt, ['/bin/sh', '-c', 'echo out; echo err >&2; printf partial; exit 3']);
      const marker = join(base, `${ctx.id}.exited`);
      ctx.exitCommand = ['/bin/sh', '-c', `echo ran > ${marker}`];
      const res = await driver.create(ctx);
      assert.ok(res.pid > 0 && res.supervisorPid > 0);
      assert.equal((await driver.status(ctx)).status, 'created');
      await driver.start(ctx);
      const info = await driver.waitExit(ctx);
      assert.equal(info.exitCode, 3);
      assert.ok(Math.abs(info.finishedAt - Date.now()) < 10_000);
      assert.deepEqual(driver.exitInfo(ctx)?.exitCode, 3);
      const lines = await logLines(ctx);
      assert.deepEqual(
        lines.map((l) => [l.stream, l.text]),
        [
          ['stdout', 'out\n'],
          ['stderr', 'err\n'],
          ['stdout', 'partial'],
        ],
      );
      assert.equal((await driver.status(ctx)).status, 'stopped');
      await waitFor('the exit command to run', () => existsSync(marker), 10_000, 10);
      assert.equal(readFileSync(marker, 'utf8'), 'ran\n');
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });

    test('an OOM kill is reported as such', async () => {
      const mib = 1024 * 1024;
      const ctx = newCtx(rt, ['/bin/sh', '-c', 'head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null'], {
        resources: { memory: 16 * mib, memorySwap: 16 * mib },
      });
      await driver.create(ctx);
      await driver.start(ctx);
      const info = await driver.waitExit(ctx, AbortSignal.timeout(30_000));
      assert.equal(info.exitCode, 137);
      assert.equal(info.reason, 'OOM killed');
      assert.equal(info.oomKilled, true);
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });

    test('kill with SIGTERM (trapped) and SIGKILL', async () => {
      const term = newCtx(rt, ['/bin/sh', '-c', 'trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done']);
      await driver.create(term);
      await driver.start(term);
      assert.equal((await driver.status(term)).status, 'running');
      // wait until the trap is installed
      await waitFor('"ready" in the log', async () => (await logLines(term)).length > 0, 10_000, 20);
      await driver.kill(term, 'SIGTERM');
      assert.equal((await driver.waitExit(term, AbortSignal.timeout(10_000))).exitCode, 42);

      const k = newCtx(rt, ['/bin/sleep', '100']);
      await driver.create(k);
      await driver.start(k);
      await driver.kill(k, 'KILL', true);
      const info = await driver.waitExit(k, AbortSignal.timeout(10_000));
      assert.equal(info.exitCode, 137);
      assert.match(info.reason ?? '', /signal 9/);
      await assert.rejects(driver.kill(k, 'SIGKILL'), StateError);
      await driver.delete(term);
      await driver.delete(k);
      assert.deepEqual([...leftovers(term), ...leftovers(k)], []);
    });

    test('pause and resume through the freezer; update, stats, top', async () => {
      const ctx = newCtx(rt, ['/bin/sleep', '100']);
      await driver.create(ctx);
      await driver.start(ctx);
      await driver.pause(ctx);
      assert.equal(freezerState(ctx.id), 'FROZEN');
      assert.equal((await driver.status(ctx)).status, 'paused');
      await driver.resume(ctx);
      assert.equal(freezerState(ctx.id), 'THAWED');
      assert.equal((await driver.status(ctx)).status, 'running');

      await driver.update(ctx, { memory: 64 * 1024 * 1024, pidsLimit: 50, cpus: 0.5 });
      assert.equal(memoryLimit(ctx.id), 64 * 1024 * 1024);
      assert.equal(pidsMax(ctx.id), '50');
      assert.deepEqual(cpuQuota(ctx.id), { quota: 50000, period: 100000 });

      const s = await driver.stats(ctx);
      assert.ok(s.cpuUsageNs > 0, `cpu ${s.cpuUsageNs}`);
      assert.ok(s.memoryUsage > 0, `memory ${s.memoryUsage}`);
      assert.equal(s.memoryLimit, 64 * 1024 * 1024);
      assert.equal(s.pids, 1);

      const top = await driver.top(ctx, []);
      // docker's default: ps -ef
      assert.deepEqual(top.titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
      assert.equal(top.rows.length, 1);
      assert.match(top.rows[0]![7]!, /sleep 100/);
      const top2 = await driver.top(ctx, ['-ef']);
      assert.ok(top2.titles.includes('PID'));
      assert.equal(top2.rows.length, 1);

      await driver.kill(ctx, 'SIGKILL');
      await driver.waitExit(ctx);
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });

    test('exec without and with a terminal; a missing command is CommandNotFoundError', async () => {
      const ctx = newCtx(rt, ['/bin/sleep', '100']);
      await driver.create(ctx);
      await driver.start(ctx);

      const out = new Sink();
      const err = new Sink();
      const code = await driver.exec(
        ctx,
        {
          command: ['/bin/sh', '-c', 'echo hi; echo oops >&2; exit 5'],
          env: [],
          tty: false,
          stdin: false,
          privileged: false,
          detach: false,
        },
        { stdin: null, stdout: out, stderr: err },
      );
      assert.equal(code, 5);
      assert.equal(out.data, 'hi\n');
      assert.equal(err.data, 'oops\n');

      // stdin through the exec
      const input = new PassThrough();
      const catOut = new Sink();
      const catCode = driver.exec(
        ctx,
        { command: ['cat'], env: [], tty: false, stdin: true, privileged: false, detach: false },
        { stdin: input, stdout: catOut, stderr: new Sink() },
      );
      input.end('through stdin\n');
      assert.equal(await catCode, 0);
      assert.equal(catOut.data, 'through stdin\n');

      // a terminal, sized by the client before the command starts (crun: through hull-ttywait, src/container/ttywait.ts)
      for (let i = 0; i < 10; i++) {
        const tty = new Sink();
        const ttyCode = await driver.exec(
          ctx,
          {
            command: ['/bin/sh', '-c', 'tty; stty size'],
            env: [],
            tty: true,
            stdin: false,
            privileged: false,
            detach: false,
          },
          { stdin: null, stdout: tty, stderr: tty, size: () => ({ rows: 33, cols: 101 }) },
        );
        assert.equal(ttyCode, 0);
        assert.match(tty.data, /^\/dev\/pts\/\d+\r\n33 101\r\n$/, `exec ${i + 1}`);
      }
      // a command that is not there: the helper reports it as docker's exec does (126, docker's words)
      if (rt === 'crun') {
        const missing = new Sink();
        assert.equal(
          await driver.exec(
            ctx,
            { command: ['nonexistent-cmd'], env: [], tty: true, stdin: false, privileged: false, detach: false },
            { stdin: null, stdout: missing, stderr: missing, size: () => ({ rows: 33, cols: 101 }) },
          ),
          126,
        );
        assert.match(missing.data, /exec: "nonexistent-cmd": executable file not found in \$PATH: unknown\r\n$/);
      }

      // resize while it runs
      const input2 = new PassThrough();
      const tty2 = new Sink();
      let size = { rows: 10, cols: 20 };
      let onResize: (() => void) | undefined;
      const p2 = driver.exec(
        ctx,
        {
          command: [
            '/bin/sh',
            '-c',
            'stty size; read x; i=0; while [ "$(stty size)" != "50 132" ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done; stty size',
          ],
          env: [],
          tty: true,
          stdin: true,
          privileged: false,
          detach: false,
        },
        {
          stdin: input2,
          stdout: tty2,
          stderr: tty2,
          size: () => size,
          onResize: (cb) => {
            onResize = cb;
          },
        },
      );
      await waitFor('the first size', () => tty2.data.includes('10 20'), 10_000, 10);
      // a burst, as `stty rows 50 cols 132` makes (two SIGWINCHes): the last size must win
      size = { rows: 50, cols: 20 };
      onResize?.();
      size = { rows: 50, cols: 132 };
      onResize?.();
      input2.write('go\n');
      assert.equal(await p2, 0);
      assert.match(tty2.data, /10 20\r\n[\s\S]*50 132\r\n$/);

      await assert.rejects(
        driver.exec(
          ctx,
          { command: ['nonexistent-cmd'], env: [], tty: false, stdin: false, privileged: false, detach: false },
          { stdin: null, stdout: new Sink(), stderr: new Sink() },
        ),
        (e: unknown) => e instanceof CommandNotFoundError && e.exitCode === 127,
      );
      // detached: returns at once, the process runs on
      assert.equal(
        await driver.exec(
          ctx,
          { command: ['/bin/sleep', '30'], env: [], tty: false, stdin: false, privileged: false, detach: true },
          { stdin: null, stdout: new Sink(), stderr: new Sink() },
        ),
        0,
      );
      assert.equal((await driver.top(ctx, [])).rows.length, 2);

      await driver.kill(ctx, 'SIGKILL', true);
      await driver.waitExit(ctx);
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });

    test('attach with stdin: cat echoes back, closing stdin ends it', async () => {
      const ctx = newCtx(rt, ['/bin/cat'], { stdin: true });
      await driver.create(ctx);
      const input = new PassThrough();
      const out = new Sink();
      const attached = driver.attach(ctx, { stdin: input, stdout: out, stderr: new Sink() });
      await driver.start(ctx);
      input.write('hello\n');
      await waitFor('hello', () => out.data.includes('hello'), 10_000, 10);
      input.end('world\n');
      await attached;
      assert.equal(out.data, 'hello\nworld\n');
      assert.equal((await driver.waitExit(ctx, AbortSignal.timeout(10_000))).exitCode, 0);
      assert.deepEqual(
        (await logLines(ctx)).map((l) => l.text),
        ['hello\n', 'world\n'],
      );
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });

    test('a terminal container: attach sees the pty output and its size', async () => {
      // the size is read first thing: it must be in place when the process starts (start sets it)
      const ctx = newCtx(rt, ['/bin/sh', '-c', 'stty size; read x; tty'], { tty: true, stdin: true });
      await driver.create(ctx);
      const input = new PassThrough();
      const out = new Sink();
      const stdio: StdioStreams = { stdin: input, stdout: out, stderr: out, size: () => ({ rows: 24, cols: 77 }) };
      const attached = driver.attach(ctx, stdio);
      await driver.start(ctx);
      await waitFor('the size', () => out.data.includes('\n'), 10_000, 10);
      input.write('x\n');
      await attached;
      assert.match(out.data, /^24 77\r\nx\r\n\/dev\/pts\/\d+\r\n$/);
      assert.equal((await driver.waitExit(ctx, AbortSignal.timeout(10_000))).exitCode, 0);
      await driver.delete(ctx);
    });

    test('a missing command fails create with CommandNotFoundError; a non-executable one with 126', async () => {
      const ctx = newCtx(rt, ['no-such-command']);
      await assert.rejects(driver.create(ctx), (e: unknown) => e instanceof CommandNotFoundError && e.exitCode === 127);
      assert.equal(readMountInfo().filter((m) => m.mountPoint.startsWith(ctx.dir)).length, 0);
      await driver.delete(ctx);
      const ctx2 = newCtx(rt, ['/etc/passwd']);
      await assert.rejects(
        driver.create(ctx2),
        (e: unknown) => e instanceof CommandNotExecutableError && e.exitCode === 126,
      );
      await driver.delete(ctx2);
      assert.deepEqual([...leftovers(ctx), ...leftovers(ctx2)], []);
    });

    test('restart keeps the writable layer and the log; read-only root', async () => {
      const ctx = newCtx(rt, ['/bin/sh', '-c', 'cat /data 2>/dev/null || echo first > /data; echo run']);
      await driver.create(ctx);
      await driver.start(ctx);
      assert.equal((await driver.waitExit(ctx)).exitCode, 0);
      await driver.cleanupAfterExit(ctx);
      assert.equal(readMountInfo().filter((m) => m.mountPoint.startsWith(ctx.dir)).length, 0);
      assert.equal(driver.exitInfo(ctx)?.exitCode, 0);
      await driver.create(ctx);
      assert.equal(driver.exitInfo(ctx), null);
      await driver.start(ctx);
      assert.equal((await driver.waitExit(ctx)).exitCode, 0);
      assert.deepEqual(
        (await logLines(ctx)).map((l) => l.text),
        ['run\n', 'first\n', 'run\n'],
      );
      await driver.delete(ctx);

      const ro = newCtx(
        rt,
        [
          '/bin/sh',
          '-c',
          'touch /x 2>/dev/null && echo writable; cat /etc/hostname; (echo ok > /tmp/y) 2>/dev/null || echo tmp-ro',
        ],
        { readOnly: true, hostname: 'rohost' },
      );
      await driver.create(ro);
      await driver.start(ro);
      assert.equal((await driver.waitExit(ro)).exitCode, 0);
      assert.deepEqual(
        (await logLines(ro)).map((l) => l.text),
        ['rohost\n', 'tmp-ro\n'],
      );
      await driver.delete(ro);
      assert.deepEqual([...leftovers(ctx), ...leftovers(ro)], []);
    });

    test('user namespace: root in the container owns its files', async () => {
      const userns = {
        uidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
      };
      const ctx = newCtx(rt, ['/bin/sh', '-c', 'id -u; touch /etc/newfile && echo wrote; stat -c %u /bin/busybox'], {
        userns,
      });
      await driver.create(ctx);
      const pid = (await driver.status(ctx)).pid;
      await driver.start(ctx);
      assert.equal((await driver.waitExit(ctx)).exitCode, 0);
      assert.deepEqual(
        (await logLines(ctx)).map((l) => l.text),
        ['0\n', 'wrote\n', '0\n'],
      );
      assert.ok(pid > 0);
      // the image layer itself is untouched
      assert.equal(
        spawnSync('stat', ['-c', '%u', join(layer, 'bin/busybox')])
          .stdout.toString()
          .trim(),
        '0',
      );
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });
  });
}

describe('container driver, runtime-independent behaviour', {
  skip: runtimes.length === 0 && 'neither runc nor crun can run here',
}, () => {
  const rt = runtimes[0] ?? 'runc';

  test('the container outlives the process that created it', async () => {
    const ctx = newCtx(rt, ['/bin/sleep', '100']);
    const script = join(base, 'creator.mts');
    writeFileSync(
      script,
      [
        `import { ContainerDriver } from ${JSON.stringify(new URL('../src/container/driver.ts', import.meta.url).pathname)};`,
        'const ctx = JSON.parse(process.argv[2]);',
        'const d = new ContainerDriver();',
        'await d.create(ctx);',
        'await d.start(ctx);',
        'console.log("started");',
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(ctx)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0);
    assert.equal(out.trim(), 'started');
    const st = await driver.status(ctx);
    assert.equal(st.status, 'running');
    assert.equal(driver.exitInfo(ctx), null);
    await driver.kill(ctx, 'SIGKILL');
    assert.equal((await driver.waitExit(ctx, AbortSignal.timeout(10_000))).exitCode, 137);
    await driver.delete(ctx);
    assert.deepEqual(leftovers(ctx), []);
  });

  test('conmon killed with SIGKILL: waitExit resolves, delete cleans up', async () => {
    const ctx = newCtx(rt, ['/bin/sleep', '100']);
    const { supervisorPid } = await driver.create(ctx);
    await driver.start(ctx);
    const waiting = driver.waitExit(ctx, AbortSignal.timeout(10_000));
    process.kill(supervisorPid, 'SIGKILL');
    const info = await waiting;
    assert.equal(info.exitCode, 255);
    assert.match(info.reason ?? '', /conmon exited unexpectedly/);
    await driver.delete(ctx);
    assert.deepEqual(leftovers(ctx), []);
    await driver.delete(ctx); // idempotent
  });

  for (const r of ALL_RUNTIMES) {
    const expect = blkioWeightExpectation(r);
    test(`--blkio-weight with ${r}: ${describeBlkio(expect)}`, { skip: runtimeSkip(r) }, async () => {
      const ctx = newCtx(r, ['/bin/sleep', '100'], { resources: { blkioWeight: 300 } });
      if (expect.outcome === 'applied') {
        await driver.create(ctx);
        const w = blkioWeight(ctx.id);
        console.log(`# --blkio-weight 300 with ${r}: ${w.file} reads ${JSON.stringify(w.value)}`);
        if (expect.file) assert.equal(w.file, expect.file);
        assert.match(w.value, expectedBlkioWeight(w.file, 300), w.file);
      } else {
        await assert.rejects(
          driver.create(ctx),
          (e: Error) => e.name === 'HostSupportError' && expect.message.test(e.message),
        );
        assert.equal(existsSync(ctx.dir), false);
      }
      await driver.delete(ctx);
      assert.deepEqual(leftovers(ctx), []);
    });
  }

  test('waitExit honours its abort signal', async () => {
    const ctx = newCtx(rt, ['/bin/sleep', '100']);
    await driver.create(ctx);
    await driver.start(ctx);
    await assert.rejects(driver.waitExit(ctx, AbortSignal.timeout(100)));
    await driver.delete(ctx);
    assert.deepEqual(leftovers(ctx), []);
  });

  test('attach works with an instance dir path longer than a unix socket address', async () => {
    const longRoot = join(base, 'x'.repeat(60), 'y'.repeat(60));
    const ctx = newCtx(rt, ['/bin/cat'], { stdin: true }, longRoot);
    assert.ok(join(ctx.dir, 'attach').length > 108);
    await driver.create(ctx);
    const input = new PassThrough();
    const out = new Sink();
    const attached = driver.attach(ctx, { stdin: input, stdout: out, stderr: new Sink() });
    await driver.start(ctx);
    input.end('long path\n');
    await attached;
    assert.equal(out.data, 'long path\n');
    await driver.waitExit(ctx, AbortSignal.timeout(10_000));
    await driver.delete(ctx);
    assert.deepEqual(leftovers(ctx), []);
  });

  test('attach to a container that is not running is a StateError', async () => {
    const ctx = newCtx(rt, ['/bin/true']);
    await assert.rejects(driver.attach(ctx, { stdin: null, stdout: new Sink(), stderr: new Sink() }), StateError);
    await driver.delete(ctx);
  });

  for (const r of runtimes) {
    test(`timing with ${r}: create + start + waitExit + delete of /bin/true`, async () => {
      const times: number[] = [];
      const phases: string[] = [];
      for (let i = 0; i < 7; i++) {
        const ctx = newCtx(r, ['/bin/true']);
        const t0 = performance.now();
        await driver.create(ctx);
        const t1 = performance.now();
        await driver.start(ctx);
        const t2 = performance.now();
        assert.equal((await driver.waitExit(ctx)).exitCode, 0);
        const t3 = performance.now();
        await driver.delete(ctx);
        const t4 = performance.now();
        times.push(t4 - t0);
        phases.push(
          `create ${(t1 - t0).toFixed(1)} start ${(t2 - t1).toFixed(1)} wait ${(t3 - t2).toFixed(1)} delete ${(t4 - t3).toFixed(1)}`,
        );
      }
      const sorted = [...times].sort((a, b) => a - b);
      console.log(
        `# ${r}: median ${sorted[3]!.toFixed(1)} ms (min ${sorted[0]!.toFixed(1)}, max ${sorted[6]!.toFixed(1)}); ${phases[3]}`,
      );
    });
  }
});

describe('k8s-file log reader', () => {
  const dir = join(base, 'logs');
  mkdirSync(dir, { recursive: true });

  test('parses records and joins partial lines per stream', async () => {
    const p = join(dir, 'a.log');
    writeFileSync(
      p,
      [
        '2024-05-01T10:00:00.123456789+00:00 stdout P hel',
        '2024-05-01T10:00:00.223456789+00:00 stderr F e1',
        '2024-05-01T10:00:00.323456789+00:00 stdout F lo',
        '2024-05-01T10:00:01.000000000+02:00 stdout F ',
        '2024-05-01T10:00:02.000000000+00:00 stdout F with  spaces ',
        '2024-05-01T10:00:03.000000000+00:00 stderr P tail',
        '',
      ].join('\n'),
    );
    const lines: LogLine[] = [];
    await readLogs(p, {}, (l) => lines.push(l));
    assert.deepEqual(
      lines.map((l) => [l.stream, l.text]),
      [
        ['stderr', 'e1\n'],
        ['stdout', 'hello\n'],
        ['stdout', '\n'],
        ['stdout', 'with  spaces \n'],
        ['stderr', 'tail'],
      ],
    );
    // docker's fixed format: UTC, 9 fraction digits, Z; the file's nanoseconds kept
    assert.equal(lines[1]!.time, '2024-05-01T10:00:00.123456789Z');
    assert.equal(lines[1]!.timeMs, Date.UTC(2024, 4, 1, 10, 0, 0, 123));
    assert.equal(parseLogTime('2024-05-01T10:00:01.000000000+02:00'), Date.UTC(2024, 4, 1, 8, 0, 1));

    const tail: string[] = [];
    await readLogs(p, { tail: 2 }, (l) => tail.push(l.text));
    assert.deepEqual(tail, ['with  spaces \n', 'tail']);
    const since: string[] = [];
    await readLogs(p, { since: Date.UTC(2024, 4, 1, 10, 0, 2) }, (l) => since.push(l.text));
    assert.deepEqual(since, ['with  spaces \n', 'tail']);
    const ts: string[] = [];
    await readLogs(p, { tail: 1, timestamps: true }, (l) => ts.push(l.text));
    assert.deepEqual(ts, ['2024-05-01T10:00:03.000000000Z tail']);
    const until: string[] = [];
    await readLogs(p, { until: Date.UTC(2024, 4, 1, 10, 0, 2) }, (l) => until.push(l.text));
    assert.deepEqual(until, ['e1\n', 'hello\n', '\n'], 'until: lines before the time (+02:00 is 08:00 UTC)');
    assert.equal(parseLogRecord('garbage'), null);
    const none: LogLine[] = [];
    await readLogs(join(dir, 'missing.log'), {}, (l) => none.push(l));
    assert.equal(none.length, 0);
  });

  test('timestamps: any offset and precision to UTC with 9 digits', () => {
    assert.equal(normalizeLogTime('2026-12-03T17:04:05.123456789+02:00'), '2026-12-03T15:04:05.123456789Z');
    assert.equal(normalizeLogTime('2026-12-03T15:04:05.1Z'), '2026-12-03T15:04:05.100000000Z');
    assert.equal(normalizeLogTime('2026-12-03T15:04:05Z'), '2026-12-03T15:04:05.000000000Z');
    assert.equal(normalizeLogTime('2027-01-01T00:30:00.000000001+01:00'), '2026-12-31T23:30:00.000000001Z');
  });

  test("docker's json-file lines and rotated files (<log>.N … <log>.1, oldest first)", async () => {
    const p = join(dir, 'j.log');
    const j = (log: string, stream: string, time: string) => JSON.stringify({ log, stream, time });
    writeFileSync(`${p}.2`, `${j('first\n', 'stdout', '2024-05-01T10:00:00.5Z')}\n`);
    // k8s-file and json-file records may share a file (a driver changed between starts)
    writeFileSync(
      `${p}.1`,
      `2024-05-01T10:00:01.000000000+00:00 stdout F second\n${j('par', 'stderr', '2024-05-01T10:00:02Z')}\n`,
    );
    writeFileSync(
      p,
      `${j('tial\n', 'stderr', '2024-05-01T10:00:03Z')}\n${j('last\n', 'stdout', '2024-05-01T10:00:04.000000007Z')}\n`,
    );
    writeFileSync(`${p}.x`, 'not a rotated file\n');
    const got: LogLine[] = [];
    await readLogs(p, {}, (l) => got.push(l));
    assert.deepEqual(
      got.map((l) => [l.stream, l.text, l.time]),
      [
        ['stdout', 'first\n', '2024-05-01T10:00:00.500000000Z'],
        ['stdout', 'second\n', '2024-05-01T10:00:01.000000000Z'],
        ['stderr', 'partial\n', '2024-05-01T10:00:02.000000000Z'],
        ['stdout', 'last\n', '2024-05-01T10:00:04.000000007Z'],
      ],
    );
    const tail: string[] = [];
    await readLogs(p, { tail: 3 }, (l) => tail.push(l.text));
    assert.deepEqual(tail, ['second\n', 'partial\n', 'last\n'], 'tail counts across the files');
    assert.deepEqual(rotatedLogPaths(p), [`${p}.2`, `${p}.1`]);
  });

  test('tail over a long log', async () => {
    const p = join(dir, 'long.log');
    const lines = Array.from(
      { length: 5000 },
      (_, i) => `2024-05-01T10:00:00.000000000+00:00 ${i % 2 ? 'stderr' : 'stdout'} F line ${i}`,
    );
    writeFileSync(p, lines.join('\n') + '\n');
    const got: string[] = [];
    await readLogs(p, { tail: 3 }, (l) => got.push(l.text));
    assert.deepEqual(got, ['line 4997\n', 'line 4998\n', 'line 4999\n']);
    const all: string[] = [];
    await readLogs(p, { tail: 10_000 }, (l) => all.push(l.text));
    assert.equal(all.length, 5000);
    assert.equal(all[0], 'line 0\n');
    const none: string[] = [];
    await readLogs(p, { tail: 0 }, (l) => none.push(l.text));
    assert.equal(none.length, 0);
  });

  test('multi-byte characters split across reads stay intact', async () => {
    const p = join(dir, 'utf8.log');
    const prefix = '2024-05-01T10:00:00.000000000+00:00 stdout F ';
    const text = 'a'.repeat(64 * 1024 - 1 - prefix.length) + 'é€ done';
    writeFileSync(p, `${prefix}${text}\n`);
    const got: string[] = [];
    await readLogs(p, {}, (l) => got.push(l.text));
    assert.deepEqual(got, [`${text}\n`]);
  });

  test('follows a growing file until told to stop, then drains', async () => {
    const p = join(dir, 'b.log');
    writeFileSync(p, '2024-05-01T10:00:00.000000000+00:00 stdout F one\n');
    const stop = new AbortController();
    const got: string[] = [];
    const reading = readLogs(p, { follow: true, signal: stop.signal, tail: 5 }, (l) => got.push(l.text));
    await waitFor('the line that was there', () => got.length === 1, 10_000, 10);
    const { appendFileSync } = await import('node:fs');
    // a partial record and its end, written apart (whether one read or two takes them in, they join)
    appendFileSync(p, '2024-05-01T10:00:01.000000000+00:00 stdout P tw');
    appendFileSync(p, '\n2024-05-01T10:00:01.000000000+00:00 stdout F o\n');
    await waitFor('the appended line', () => got.length >= 2, 10_000, 10);
    assert.deepEqual(got, ['one\n', 'two\n']);
    appendFileSync(p, '2024-05-01T10:00:02.000000000+00:00 stderr F three\n');
    stop.abort();
    await reading;
    assert.deepEqual(got, ['one\n', 'two\n', 'three\n']);
  });
});

describe('driver helpers', () => {
  test('runtime errors map to docker exit codes', () => {
    assert.ok(
      mapRuntimeError(
        'runc',
        'create',
        'time="x" level=error msg="runc create failed: unable to start container process: exec: \\"foo\\": executable file not found in $PATH"',
        ['foo'],
      ) instanceof CommandNotFoundError,
    );
    assert.ok(
      mapRuntimeError('runc', 'create', 'exec: "/x": stat /x: no such file or directory', ['/x']) instanceof
        CommandNotFoundError,
    );
    assert.ok(
      mapRuntimeError('crun', 'create', 'executable file `foo` not found in $PATH: No such file or directory', [
        'foo',
      ]) instanceof CommandNotFoundError,
    );
    assert.ok(
      mapRuntimeError('runc', 'create', 'exec: "/etc/passwd": permission denied', ['/etc/passwd']) instanceof
        CommandNotExecutableError,
    );
    assert.ok(
      mapRuntimeError('crun', 'create', 'open executable: Permission denied', ['/etc/passwd']) instanceof
        CommandNotExecutableError,
    );
    const other = mapRuntimeError('runc', 'create', 'time="x" level=error msg="cgroup: something broke"', ['sh']);
    assert.equal(other.constructor.name, 'HostCommandError');
    assert.match(other.message, /cgroup: something broke/);
  });

  test('ps output keeps spaces in the command column', () => {
    const p = parsePsOutput('  PID USER     TIME CMD\n  12 root 00:00:00 sleep 100 --x\n');
    assert.deepEqual(p, {
      titles: ['PID', 'USER', 'TIME', 'CMD'],
      rows: [['12', 'root', '00:00:00', 'sleep 100 --x']],
    });
  });
});
