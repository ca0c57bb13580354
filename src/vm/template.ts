/**
 * VM templates: VMs that start like containers. An image VM's guest is the same up to the point where hull's
 * agent waits for its instance, whatever the image: the same kernel, initramfs (with the agent), RAM, vCPUs,
 * devices, accelerator and QEMU. That point is reached once per set of those inputs, saved (QEMU's migration
 * stream to a file, the VM stopped first) and restored for each VM start instead of a boot (the monitor:
 * `-incoming fd:3` with the state file open there, started paused; `cont` once loaded).
 *
 * What makes one template serve every instance:
 *   - The agent runs in template mode (`hull.template=1`): it loads every driver but the disk's and the NICs'
 *     (virtio_blk, virtio_net), says 'T', and waits for 'A'. The disk and NIC devices are in the template's
 *     machine, but their drivers probe only after the restore, so what they find is the instance's own:
 *     QEMU's backends (-drive, -netdev) are not part of the saved state, and a restoring QEMU is given the
 *     instance's disk overlay and taps on its command line (template.ts builds it from the instance's cold-boot
 *     command line, so whatever else that line has, the template has too).
 *   - 'A' (monitor.ts, when the restored guest runs) carries the instance's parts: fresh entropy from the host
 *     (the agent credits it and reseeds the CRNG before anything reads it; the kernel's boot_id is made on its
 *     first read, which nothing does before the save), the host's clock (the saved guest's clock stopped at the
 *     save), the root disk, --read-only, and per NIC the instance's MAC for the template's (virtio-net's MAC
 *     is in the saved state; the guest sets the new one, and tells the device through the control queue).
 *   - The template's NICs have no backend (QEMU warns "has no peer") and MACs of hull's own (02:68:75:6c:6c:NN).
 *
 * Not templated (cold boot, as before): disk-image VMs, the emulated device model, a user's kernel (its drivers
 * are built in, nothing can wait) or --initrd, volumes (vhost-user-fs cannot be migrated), `--no-template` and
 * HULL_VM_TEMPLATES=0.
 *
 * Files: <root>/vm/templates/<key>/{state.bin,template.json}; <key> is the SHA-256 of the template's QEMU
 * command line (kernel and initramfs paths, RAM, vCPUs, machine and devices, accelerator), the QEMU binary's and
 * the kernel's identity (path, size, mtime) and the format version: any change makes a new template. Made on
 * first use under a lock (concurrent starts make one), in a temp dir renamed into place; removed by
 * `hull system prune`, counted by `hull system df`. A restore that fails (a damaged or missing file, QEMU
 * refusing it) falls back to a cold boot with a one-line warning (monitor.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { HullError } from '../common/errors.js';
import { hullEnv } from '../common/env.js';
import { treeSize, writeFileAtomic } from '../common/fsutil.js';
import { rootPaths, VM_SOCKETS } from '../common/paths.js';
import { withLock } from '../host/lock.js';
import { processAlive } from '../host/proc.js';
import type { Accel } from '../host/qemu.js';
import { qemuArgs, type MachineOptions } from './machine.js';
import { FrameDecoder, T } from './protocol.js';
import { QmpClient } from './qmp.js';

/** Bumped when what a template holds changes in a way its inputs do not show (the agent's template protocol). */
const FORMAT = 1;
export const TEMPLATE_STATE = 'state.bin';
export const TEMPLATE_META = 'template.json';
/** what the template's NIC i is called until the instance's MAC replaces it */
export const templateMac = (i: number): string => `02:68:75:6c:6c:${i.toString(16).padStart(2, '0')}`;
/** the placeholder disk path in the template's command line (its -drive becomes a null-co device) */
const PLACEHOLDER_DISK = '/dev/null';

/** The inputs of a template. */
export interface TemplateSpec {
  qemu: string;
  accel: Accel;
  kernelImage: string;
  kernelVersion: string;
  initrd: string;
  memoryMiB: number;
  cpus: number;
  /** network interfaces of the instance: a template per count */
  nics: number;
  /** how long the template's boot may take (the VM boot timeout) */
  bootTimeoutMs: number;
}

/** A template ready to restore. */
export interface Template {
  key: string;
  /** the saved state */
  state: string;
}

/** What a restoring monitor needs (vm.json's `restore`). */
export interface RestorePlan {
  template: string;
  state: string;
  /** QEMU's command line for the restore: the instance's own, waiting for the migration stream */
  argv: string[];
  /** 'A': the root disk in the guest, --read-only, the NICs' [template MAC, instance MAC] */
  root: string;
  readOnly: boolean;
  macs: [string, string][];
}

/** Templates are used unless HULL_VM_TEMPLATES=0 or the instance says no (--no-template). */
export function templatesEnabled(instance?: boolean): boolean {
  const env = hullEnv('HULL_VM_TEMPLATES');
  return instance !== false && env !== '0' && env !== 'false';
}

export function templatesDir(root: string): string {
  return rootPaths(root).vmTemplates;
}

/** The template machine: the instance's model with fixed names, a placeholder disk and NICs without backends. */
function buildArgv(spec: TemplateSpec): string[] {
  const m: MachineOptions = {
    accel: spec.accel,
    deviceModel: 'virtio',
    mode: 'agent',
    kernel: spec.kernelImage,
    initrd: spec.initrd,
    disk: PLACEHOLDER_DISK,
    diskFormat: 'raw',
    memoryMiB: spec.memoryMiB,
    cpus: spec.cpus,
    name: 'template',
    qmpSocket: VM_SOCKETS.qmp,
    agentSocket: VM_SOCKETS.agent,
    consoleSocket: VM_SOCKETS.console,
    nics: Array.from({ length: spec.nics }, (_, i) => ({ tap: `tap${i}`, mac: templateMac(i) })),
  };
  const a = qemuArgs(m);
  const out: string[] = [];
  for (let i = 0; i < a.length; i++) {
    const flag = a[i]!;
    const v = a[i + 1];
    if (flag === '-netdev') {
      i++;
      continue;
    }
    if (flag === '-drive' && v?.startsWith(`file=${PLACEHOLDER_DISK},`)) {
      out.push(flag, 'driver=null-co,read-zeroes=on,size=1G,if=none,id=root');
      i++;
    } else if (flag === '-device' && v && /(^|,)netdev=[^,]+/.test(v)) {
      out.push(flag, v.replace(/(^|,)netdev=[^,]+/, ''));
      i++;
    } else if (flag === '-append' && v !== undefined) {
      // page_reporting_order=0: the guest reports free pages of any size, not only 2 MiB blocks, so the
      // saved state (and each clone's memory) holds only the pages in use
      out.push(flag, `${v} hull.template=1 page_reporting.page_reporting_order=0`);
      i++;
    } else out.push(flag);
  }
  return out;
}

function identity(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${Math.floor(st.mtimeMs)}`;
}

/** The template's key: a hash of everything that makes it what it is. */
export function templateKey(spec: TemplateSpec): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        format: FORMAT,
        argv: buildArgv(spec),
        qemu: identity(spec.qemu),
        kernel: identity(spec.kernelImage),
        initrd: identity(spec.initrd),
      }),
    )
    .digest('hex');
}

/**
 * The restoring QEMU's command line: the instance's cold-boot line (its disk, taps, sockets) without the kernel,
 * started paused, loading the state from fd 3 (the monitor opens the template's file there).
 */
export function restoreArgv(coldArgv: string[]): string[] {
  // the kernel and initramfs are in the saved RAM: QEMU need not load them (13 MiB of its memory otherwise)
  const a: string[] = [];
  for (let i = 0; i < coldArgv.length; i++) {
    if (coldArgv[i] === '-kernel' || coldArgv[i] === '-initrd' || coldArgv[i] === '-append') i++;
    else a.push(coldArgv[i]!);
  }
  // the monitor gives QEMU the state file as fd 3
  return [...a, '-S', '-incoming', 'fd:3'];
}

/** How long a template that could not be made is not tried again (hull system prune forgets it at once). */
const FAILED_RETRY_MS = 15 * 60_000;

/** The template for `spec`, made now if there is none (the first start of such a VM pays for it). */
export async function ensureTemplate(root: string, spec: TemplateSpec, status: (s: string) => void): Promise<Template> {
  const key = templateKey(spec);
  const dir = join(templatesDir(root), key);
  const argv = buildArgv(spec);
  const found = (): Template | null =>
    existsSync(join(dir, TEMPLATE_META)) ? { key, state: join(dir, TEMPLATE_STATE) } : null;
  const have = found();
  if (have) return have;
  // a template that could not be made is not tried on every start (the inputs, agent included, are in its key),
  // but a failure may have been passing (a boot past its timeout on a loaded host): tried again after a while
  const failed = `${dir}.failed`;
  if (existsSync(failed) && Date.now() - statSync(failed).mtimeMs < FAILED_RETRY_MS)
    throw new HullError(
      `it could not be made in the last 15 minutes (${readFileSync(failed, 'utf8').trim()}); hull system prune tries again now`,
    );
  mkdirSync(templatesDir(root), { recursive: true });
  return withLock(
    join(templatesDir(root), '.lock'),
    async () => {
      const again = found();
      if (again) return again;
      removeStale(templatesDir(root));
      status(`Making the VM template (kernel ${spec.kernelVersion}, ${spec.memoryMiB} MiB, ${spec.cpus} vCPU)...`);
      try {
        await buildTemplate(dir, spec, argv);
      } catch (e) {
        writeFileAtomic(failed, (e as Error).message);
        throw e;
      }
      return found()!;
    },
    // another start may be making it: wait as long as that can take
    { timeoutMs: spec.bootTimeoutMs + 60_000, what: 'the VM template lock' },
  );
}

/** What an interrupted build left (its process is gone): <key>.tmp-<pid>. */
function removeStale(dir: string): void {
  for (const n of readdirSync(dir)) {
    const m = /\.tmp-(\d+)$/.exec(n);
    if (m && !processAlive(Number(m[1]))) rmSync(join(dir, n), { recursive: true, force: true });
  }
}

function listen(srv: Server, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(name, () => resolve());
  });
}

function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Boot the template machine to the agent's 'T', save it, and put it in place as <dir>. */
async function buildTemplate(dir: string, spec: TemplateSpec, argv: string[]): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  // QEMU's cwd and its sockets: a short directory of its own (a socket path must fit in 108 bytes)
  const run = mkdtempSync(join(tmpdir(), 'hull-template-'));
  const servers: Server[] = [];
  const conns: Socket[] = [];
  const fds: number[] = [];
  let qemu: ChildProcess | null = null;
  try {
    let qmpConn!: (s: Socket) => void;
    const qmpSock = new Promise<Socket>((r) => (qmpConn = r));
    let agentConn!: (s: Socket) => void;
    const agentSock = new Promise<Socket>((r) => (agentConn = r));
    const consoleFd = openSync(join(run, 'console.log'), 'w', 0o640);
    fds.push(consoleFd);
    const mk = (name: string, on: (s: Socket) => void) => {
      const srv = createServer((s) => {
        conns.push(s);
        on(s);
      });
      servers.push(srv);
      return listen(srv, join(run, name));
    };
    await mk(VM_SOCKETS.qmp, qmpConn);
    await mk(VM_SOCKETS.agent, agentConn);
    await mk(VM_SOCKETS.console, (s) => {
      s.on('data', (b: Buffer) => {
        try {
          writeSync(consoleFd, b);
        } catch {
          /* the console is best effort */
        }
      });
      s.on('error', () => undefined);
    });
    const log = openSync(join(run, 'qemu.log'), 'w', 0o640);
    const proc = spawn('setpriv', ['--pdeathsig', 'KILL', spec.qemu, ...argv], {
      cwd: run,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    qemu = proc;
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code, signal) => {
        const tail = (f: string) => {
          try {
            return readFileSync(join(run, f), 'utf8').trim().split('\n').slice(-3).join('; ');
          } catch {
            return '';
          }
        };
        const why = tail('qemu.log') || tail('console.log');
        reject(
          new HullError(
            `QEMU ended (${signal ?? `status ${code}`}) while the VM template booted${why ? `: ${why}` : ''}`,
          ),
        );
      });
    });
    exited.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HullError(`the VM template's agent did not answer within ${Math.round(spec.bootTimeoutMs / 1000)} s`),
          ),
        spec.bootTimeoutMs,
      );
    });
    timeout.catch(() => undefined);
    const race = <X>(p: Promise<X>) => Promise.race([p, exited, timeout]);
    try {
      const qmp = new QmpClient(await race(qmpSock));
      await race(qmp.handshake());
      const agent = await race(agentSock);
      // the agent's 'T': booted, every driver but the disk's and the NICs' loaded, waiting for its instance
      await race(
        new Promise<void>((resolve) => {
          const dec = new FrameDecoder();
          agent.on('data', (b: Buffer) => {
            for (const f of dec.push(b)) if (f.type === T.TEMPLATE) resolve();
          });
          agent.on('error', () => undefined);
        }),
      );
      // the agent dropped the guest's caches and compacted its memory: free page reporting hands the free
      // blocks back (after 2 s of quiet); wait until QEMU's RSS stops falling so they are not saved
      const start = Date.now();
      let last = rssKiB(proc.pid!);
      for (;;) {
        await race(sleep(500));
        const now = rssKiB(proc.pid!);
        if ((now >= last && Date.now() - start >= 2500) || Date.now() - start > 8000) break;
        last = now;
      }
      await race(qmp.execute('stop'));
      await race(qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(join(tmp, TEMPLATE_STATE))}` }));
      for (;;) {
        const r = await race(qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate'));
        if (r.status === 'completed') break;
        if (r.status === 'failed' || r.status === 'cancelled')
          throw new HullError(`saving the VM template failed: ${r['error-desc'] ?? r.status}`);
        await race(sleep(20));
      }
      qmp.execute('quit').catch(() => undefined);
      await new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) resolve();
        else proc.once('exit', () => resolve());
      });
    } finally {
      clearTimeout(timer);
    }
    const state = join(tmp, TEMPLATE_STATE);
    const fd = openSync(state, 'r');
    fsyncSync(fd);
    closeSync(fd);
    writeFileAtomic(
      join(tmp, TEMPLATE_META),
      JSON.stringify({
        created: new Date().toISOString(),
        kernel: spec.kernelVersion,
        memoryMiB: spec.memoryMiB,
        cpus: spec.cpus,
        nics: spec.nics,
        accel: spec.accel,
        size: statSync(state).size,
      }),
    );
    renameSync(tmp, dir);
  } catch (e) {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    throw e instanceof HullError ? e : new HullError(`making the VM template failed: ${(e as Error).message}`);
  } finally {
    for (const s of conns) s.destroy();
    for (const srv of servers) srv.close();
    for (const fd of fds) closeSync(fd);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(run, { recursive: true, force: true });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `hull system df`: the templates kept and their size. */
export function templateUsage(root: string): { count: number; size: number } {
  let names: string[] = [];
  try {
    names = readdirSync(templatesDir(root)).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return { count: 0, size: 0 };
  }
  return { count: names.length, size: names.reduce((n, k) => n + treeSize(join(templatesDir(root), k)), 0) };
}

/** `hull system prune`: every template (they are made again on the next VM start); the bytes freed. */
export async function pruneTemplates(root: string): Promise<number> {
  const dir = templatesDir(root);
  if (!existsSync(dir)) return 0;
  return withLock(
    join(dir, '.lock'),
    () => {
      let freed = 0;
      for (const n of readdirSync(dir)) {
        if (n === '.lock' || n.startsWith('.lock')) continue;
        const p = join(dir, n);
        freed += treeSize(p);
        rmSync(p, { recursive: true, force: true });
      }
      return freed;
    },
    { timeoutMs: 300_000, what: 'the VM template lock' },
  );
}
