/**
 * The VM driver: an OCI image as a virtual machine with its own kernel, under QEMU, behind the same
 * InstanceDriver interface as containers.
 *
 * create, in three phases (src/vm/create/): validate the request and the host (nothing made), prepare
 *   the instance dir (guest kernel and initramfs with hull's agent, both cached; root disk from the image,
 *   a cached ext4 base + a per-instance qcow2 overlay; vm.json), then spawn the monitor (src/vm/monitor.ts)
 *   detached; it starts QEMU, which begins booting at once (boot overlaps the rest of `hull run`).
 * start: asks the monitor to run the main process; that waits for the agent's READY (the boot) and
 *   answers with the process's pid or why it could not run (127/126, boot failure with the console tail).
 * Everything else goes through the monitor's control socket.
 *
 * Files in the instance dir (ctx.dir; each named in src/common/paths.ts):
 *   vm.json          the monitor's settings (QEMU argv, main process, paths)
 *   disk.qcow2       only for VMs made before root disks lived in storage pools: the writable root disk; now
 *                    it is in its pool (vm.rootDisk: <pool>/vm-disks/<id>.qcow2, an overlay over
 *                    <root>/vm/disks/<image>.ext4, or a full OS disk's imported copy; src/engine/vm-disks.ts)
 *   initrd.cpio      only with --initrd: the user's archive followed by hull's
 *   ctr.log          the main process's output (k8s-file, as conmon's)
 *   console.log      the guest's serial console; qemu.log QEMU's own stderr; monitor.log the monitor's
 *   monitor.pid qemu.pid
 *   exits/<id>       exit code; exits/reason why, when the code does not say it all; exits/oom when the
 *                    guest kernel's OOM killer killed a process of the instance
 *   qmp.sock agent.sock ctl.sock   the monitor's sockets (gone once it exits)
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  HostSupportError,
  HullError,
  InvalidArgumentError,
  StateError,
} from '../common/errors.js';
import type {
  ConfigureEnv,
  CreateResult,
  DiskFormat,
  DriverCapabilities,
  DriverDescription,
  DriverFactory,
  DriverRecovery,
  DriverRemains,
  FoundProcess,
  IsolationRequest,
  RecoveryScope,
  KindConfig,
  ExecOptions,
  ExitInfo,
  InstanceContext,
  InstanceDisplay,
  InstanceDriver,
  InstanceStats,
  ProcessInfo,
  Resources,
  RuntimeStatus,
  StdioStreams,
} from '../common/instance.js';
import { signalNumber } from '../common/parse.js';
import { killAndWait, processAlive, processArgv, processesNamingInstances } from '../host/proc.js';
import { readExitRecord, waitForExitRecord } from '../host/exitwatch.js';
import { ctlOpen, ctlRequest } from './ctl.js';
import { pruneImageDisks } from './disk.js';
import { pruneTemplates, templateUsage } from './template.js';
import type { MonitorConfig } from './machine.js';
import type { CtlAnswer, VmStats } from './monitor.js';
import { encodeData, encodeFrame, FrameDecoder, resizePayload, T, decodeStatus, type ProcessSpec } from './protocol.js';
import { VmBootError } from './errors.js';
import { checkDiskImage, DEFAULT_VM_MEMORY, MiB, rootDiskPath, validateCreate } from './create/validate.js';
import { prepareCreate } from './create/prepare.js';
import { spawnMonitor } from './create/spawn.js';
import { readCloudInitFiles } from './cloudinit.js';
import { parseFirmware } from './fullos.js';
import type { GuestAddress } from './guest-agent.js';
import { guestCopyIn, guestCopyOut, guestExec, guestFreeze, guestThaw } from './guest-ops.js';
import { instancePaths, rootPaths } from '../common/paths.js';

export { VmBootError } from './errors.js';
export { agentBinary } from './programs.js';
export { checkDiskImage, DEFAULT_VM_MEMORY, vmVolumes } from './create/validate.js';

const POLL_MS = 100;

function readInt(path: string): number | null {
  try {
    const n = parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function vmError(name: string, a: CtlAnswer, what: string): HullError {
  const msg = a.error ?? 'unknown error';
  switch (a.kind) {
    case 'not-found':
      return new CommandNotFoundError(
        `${msg}: executable file not found in the VM's $PATH (or the path does not exist); check the command and the image`,
      );
    case 'not-executable':
      return new CommandNotExecutableError(`cannot run the command in VM ${name}: ${msg}`);
    case 'state':
      return new StateError(`cannot ${what} VM ${name}: ${msg}`);
    case 'boot':
      return new VmBootError(`VM ${name} did not boot: ${msg}`);
    default:
      return new HullError(`cannot ${what} VM ${name}: ${msg}`);
  }
}

/** A writable sink that collects bytes (for top's ps output). */
class Collector {
  chunks: Buffer[] = [];
  write(b: Buffer | string): boolean {
    this.chunks.push(typeof b === 'string' ? Buffer.from(b) : b);
    return true;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

/**
 * Settings that mean nothing for a VM (its own kernel, devices and namespaces), refused in one line each before
 * anything is made. --ipc private/shareable/none is the VM's own IPC anyway.
 */
function refuseContainerOnly(req: IsolationRequest): void {
  if (req.devices?.length)
    throw new InvalidArgumentError(
      '--device is not possible for a VM yet: device passthrough (VFIO) is a later feature; use --isolation container',
    );
  if (req.deviceCgroupRules?.length)
    throw new InvalidArgumentError('--device-cgroup-rule does not apply to a VM: it has its own kernel and devices');
  for (const [flag, v] of [
    ['--pid', req.pid],
    ['--ipc', req.ipc],
    ['--uts', req.uts],
  ] as const) {
    if (v === 'host') throw new InvalidArgumentError(`${flag} host is not possible for a VM: it has its own kernel`);
    if (v?.startsWith('container:'))
      throw new InvalidArgumentError(`${flag} ${v} is not possible for a VM: it has its own kernel`);
  }
}

export class VmDriver implements InstanceDriver {
  readonly kind = 'vm' as const;
  readonly supervisorName = 'the VM monitor';
  readonly capabilities: DriverCapabilities = { liveNetworkChanges: false, console: true, diskImages: true };
  readonly recovery: DriverRecovery = {
    findRemains: (scope) => findVmRemains(scope),
    tearDown: (scope, id) => this.tearDownOrphan(scope, id),
  };

  /** The vm section, as asked (unset fields take the driver's defaults when the VM is made); container-only settings do not apply. */
  configure(req: IsolationRequest, _env: ConfigureEnv): KindConfig {
    refuseContainerOnly(req);
    if (req.shmSize !== undefined)
      throw new InvalidArgumentError(
        "--shm-size applies to containers only: a VM's /dev/shm is the guest kernel's, sized by its memory (--memory)",
      );
    if (req.sysctls && Object.keys(req.sysctls).length > 0 && req.disk)
      throw new InvalidArgumentError(
        '--sysctl is not supported for disk-image VMs (hull has no agent in them to set it); set it in the guest',
      );
    const ci = req.cloudInitFiles ?? {};
    if (!req.disk) {
      const flag = ci.userData
        ? '--cloud-init'
        : ci.networkConfig
          ? '--network-config'
          : ci.sshKey
            ? '--ssh-key'
            : req.vm?.firmware
              ? '--firmware'
              : undefined;
      if (flag)
        throw new InvalidArgumentError(
          `${flag} is for VMs that boot a full OS disk (hull vm create --disk); an image VM runs hull's own kernel and agent`,
        );
    }
    const cloudInit = readCloudInitFiles(ci);
    const firmware = parseFirmware(req.vm?.firmware);
    return {
      vm: {
        ...(req.vm ?? {}),
        ...(firmware ? { firmware } : {}),
        ...(Object.keys(cloudInit).length > 0 ? { cloudInit } : {}),
        ...(req.disk ? { disk: req.disk.path, diskFormat: req.disk.format } : {}),
        ...(req.sysctls && Object.keys(req.sysctls).length > 0 ? { sysctls: { ...req.sysctls } } : {}),
        // a full OS has a screen by default; an image VM's interface is its process and serial console (no
        // display: the field stays unset)
        ...((req.display ?? req.vm?.display ?? (req.disk ? 'vnc' : 'none')) === 'vnc'
          ? { display: 'vnc' as const }
          : req.disk
            ? { display: 'none' as const }
            : {}),
      },
    };
  }

  /** --display vnc: QEMU's VNC server on the instance dir's vnc.sock (while the VM runs). */
  display(ctx: InstanceContext): InstanceDisplay | null {
    return ctx.config.vm?.display === 'vnc' ? { type: 'vnc', socket: instancePaths(ctx.dir).vncSocket } : null;
  }

  supervisorAlive(ctx: InstanceContext, pid: number): boolean {
    return this.monitorAlive(ctx, pid);
  }

  checkDiskImage(path: string, stated?: DiskFormat): Promise<DiskFormat> {
    return checkDiskImage(path, stated);
  }

  private exitsDir(ctx: InstanceContext): string {
    return instancePaths(ctx.dir).exits;
  }

  private monitorPid(ctx: Pick<InstanceContext, 'dir'>): number {
    return readInt(instancePaths(ctx.dir).monitorPid) ?? 0;
  }

  /** This instance's monitor runs (the pid is not a recycled one). */
  private monitorAlive(ctx: Pick<InstanceContext, 'dir'>, pid = this.monitorPid(ctx)): boolean {
    if (!processAlive(pid)) return false;
    const argv = processArgv(pid);
    return argv !== null && argv.includes(ctx.dir) && argv.some((a) => a.includes('monitor'));
  }

  async pruneImageCaches(root: string, keep: ReadonlySet<string>): Promise<number> {
    return pruneImageDisks(rootPaths(root).vm, keep);
  }

  /** hull system prune: the VM templates (made again on the next VM start). */
  pruneCaches(root: string): Promise<number> {
    return pruneTemplates(root);
  }

  /** hull system df: the VM templates. */
  cacheUsage(root: string): { kind: string; count: number; size: number }[] {
    const t = templateUsage(root);
    return [{ kind: 'VM Templates', ...t }];
  }

  /** validate (nothing made), prepare (the instance dir), spawn (the monitor; on failure it is cleaned up as today). */
  async create(ctx: InstanceContext): Promise<CreateResult> {
    const plan = await validateCreate(ctx);
    await prepareCreate(ctx, plan, this.logPath(ctx));
    return spawnMonitor(ctx, () => this.cleanupAfterExit(ctx));
  }

  async start(ctx: InstanceContext): Promise<void> {
    let a: CtlAnswer;
    try {
      a = await ctlRequest(ctx.dir, { op: 'start' }, ctx.name);
    } catch (e) {
      // the monitor ended while booting (QEMU died, boot timed out): its exit record says why
      const info = this.exitInfo(ctx);
      if (info?.reason) throw new VmBootError(`VM ${ctx.name} did not boot: ${info.reason}`);
      throw e;
    }
    if (!a.ok) throw vmError(ctx.name, a, 'start');
    // a template that could not be restored: it booted cold, and says so once
    if (typeof a.warning === 'string') process.stderr.write(`hull: warning: VM ${ctx.name}: ${a.warning}\n`);
  }

  async kill(ctx: InstanceContext, signal: string, all = false): Promise<void> {
    const a = await ctlRequest(ctx.dir, { op: 'kill', signal: signalNumber(signal), all }, ctx.name).catch(() => null);
    if (!a) throw new StateError(`cannot signal VM ${ctx.name}: it is not running`);
    if (!a.ok) throw vmError(ctx.name, a, 'signal');
  }

  async status(ctx: InstanceContext): Promise<{ status: RuntimeStatus; pid: number }> {
    if (this.exitInfo(ctx) || !this.monitorAlive(ctx)) return { status: 'stopped', pid: 0 };
    const a = await ctlRequest(ctx.dir, { op: 'status' }, ctx.name).catch(() => null);
    if (!a?.ok) return { status: 'unknown', pid: 0 };
    const pid = Number(a.qemuPid) || 0;
    switch (a.phase) {
      case 'booting':
      case 'ready':
        return { status: 'created', pid };
      case 'running':
        return { status: 'running', pid };
      case 'paused':
        return { status: 'paused', pid };
      default:
        return { status: 'stopped', pid: 0 };
    }
  }

  exitInfo(ctx: InstanceContext): ExitInfo | null {
    const info: ExitInfo | null = readExitRecord(this.exitsDir(ctx), ctx.id);
    if (!info) return null;
    // the monitor says why when there is more to say than the code (QEMU killed, a kernel panic, …)
    try {
      info.reason = readFileSync(instancePaths(ctx.dir).exitReason, 'utf8').trim();
    } catch {
      /* the code's own reason stands */
    }
    // the guest kernel's OOM killer killed a process of it (the monitor's marker, as conmon's for containers)
    if (existsSync(instancePaths(ctx.dir).exitOom)) info.oomKilled = true;
    return info;
  }

  waitExit(ctx: InstanceContext, signal?: AbortSignal): Promise<ExitInfo> {
    return waitForExitRecord({
      dir: this.exitsDir(ctx),
      read: () => this.exitInfo(ctx),
      supervisorAlive: () => this.monitorAlive(ctx),
      whenSupervisorDied: () => ({
        exitCode: 255,
        finishedAt: Date.now(),
        reason: 'the VM monitor exited unexpectedly',
      }),
      pollMs: POLL_MS,
      ...(signal ? { signal } : {}),
    });
  }

  async pause(ctx: InstanceContext): Promise<void> {
    const a = await ctlRequest(ctx.dir, { op: 'pause' }, ctx.name);
    if (!a.ok) throw vmError(ctx.name, a, 'pause');
  }

  async resume(ctx: InstanceContext): Promise<void> {
    const a = await ctlRequest(ctx.dir, { op: 'resume' }, ctx.name);
    if (!a.ok) throw vmError(ctx.name, a, 'resume');
  }

  /**
   * --memory resizes the guest through the balloon, within the RAM it booted with (a VM cannot grow
   * past that without memory hotplug, which hull does not do). --cpus cannot change while it runs.
   */
  async update(ctx: InstanceContext, resources: Resources): Promise<void> {
    // the RAM it booted with (ctx.config already carries the new value)
    let booted = DEFAULT_VM_MEMORY;
    try {
      booted = (JSON.parse(readFileSync(instancePaths(ctx.dir).vmConfig, 'utf8')) as MonitorConfig).memory;
    } catch {
      /* not created: the default */
    }
    const unsupported = Object.keys(resources).filter(
      (k) => k !== 'memory' && k !== 'memorySwap' && (resources as Record<string, unknown>)[k] !== undefined,
    );
    if (unsupported.includes('cpus'))
      throw new HostSupportError(
        `VM ${ctx.name}: --cpus cannot change while it runs (no vCPU hotplug); stop it, and create it again with the new --cpus`,
      );
    if (unsupported.length > 0)
      throw new HostSupportError(
        `VM ${ctx.name}: ${unsupported.join(', ')} cannot be applied to a VM (only --memory, through the balloon)`,
      );
    if (resources.memory === undefined) return;
    if (resources.memory > booted) {
      throw new InvalidArgumentError(
        `VM ${ctx.name} booted with ${Math.round(booted / MiB)} MiB: --memory can shrink it through the balloon but not grow it past that`,
      );
    }
    if (resources.memory < 64 * MiB) throw new InvalidArgumentError('--memory for a VM must be at least 64m');
    const a = await ctlRequest(ctx.dir, { op: 'balloon', bytes: resources.memory }, ctx.name);
    if (!a.ok) throw vmError(ctx.name, a, 'update');
  }

  async stats(ctx: InstanceContext): Promise<InstanceStats> {
    const a = await ctlRequest(ctx.dir, { op: 'stats' }, ctx.name).catch(() => null);
    if (!a?.ok) throw new StateError(`no statistics for VM ${ctx.name}: it is not running`);
    const s = a.stats as VmStats;
    // the limit is what hull asked the balloon for (the guest gets there within moments); usage is the
    // guest's own figure when its balloon driver reported one, else QEMU's RSS
    const limit = s.target;
    const used =
      s.guest?.total !== undefined && (s.guest.available ?? s.guest.free) !== undefined
        ? s.guest.total - (s.guest.available ?? s.guest.free)!
        : s.qemuRss;
    return {
      cpuUsageNs: s.cpuNs,
      memoryUsage: used,
      memoryLimit: limit,
      pids: s.pids ?? 0,
      blkioRead: s.blkRead,
      blkioWrite: s.blkWrite,
      netRx: s.netRx ?? 0,
      netTx: s.netTx ?? 0,
    };
  }

  /** ps inside the guest (through the agent): the guest's processes, not QEMU's threads. */
  async top(ctx: InstanceContext, psArgs: string[]): Promise<ProcessInfo> {
    const out = new Collector();
    const err = new Collector();
    const code = await this.exec(
      ctx,
      {
        command: ['ps', ...(psArgs.length ? psArgs : ['-o', 'pid,ppid,user,args'])],
        env: [],
        tty: false,
        stdin: false,
        privileged: false,
        detach: false,
      },
      { stdin: null, stdout: out as unknown as NodeJS.WritableStream, stderr: err as unknown as NodeJS.WritableStream },
    );
    if (code !== 0) throw new HullError(`ps in VM ${ctx.name} failed (exit ${code}): ${err.text().trim()}`);
    const lines = out
      .text()
      .split('\n')
      .filter((l) => l.trim());
    if (lines.length === 0) return { titles: [], rows: [] };
    const titles = lines[0]!.trim().split(/\s+/);
    let rows = lines.slice(1).map((l) => {
      const f = l.trim().split(/\s+/);
      return [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
    });
    // the guest kernel's threads (kthreadd, pid 2, and its children) are not the instance's processes
    const pid = titles.indexOf('PID');
    const ppid = titles.indexOf('PPID');
    if (pid >= 0 && ppid >= 0) rows = rows.filter((r) => r[pid] !== '2' && r[ppid] !== '2');
    return { titles, rows };
  }

  async exec(ctx: InstanceContext, opts: ExecOptions, stdio: StdioStreams): Promise<number> {
    // a full OS: its QEMU guest agent runs the command
    if (ctx.config.vm?.disk) return guestExec(ctx.dir, ctx.name, ctx.config.env, opts, stdio);
    const size = opts.tty && stdio.size ? stdio.size() : undefined;
    const spec: ProcessSpec = {
      args: opts.command,
      env: mergeExecEnv(ctx.config.env, opts.env),
      cwd: opts.workdir ?? (ctx.config.workdir || '/'),
      user: opts.user ?? ctx.config.user,
      tty: opts.tty,
      stdin: opts.stdin && !opts.detach,
      ...(size ? { rows: size.rows, cols: size.cols } : {}),
    };
    const s = await ctlOpen(ctx.dir, { op: 'exec', spec }, ctx.name);
    if (!s.answer.ok) {
      s.socket.destroy();
      throw vmError(ctx.name, s.answer, 'exec in');
    }
    return pumpSession(s.socket, s.rest, stdio, {
      tty: opts.tty,
      stdin: opts.stdin && !opts.detach,
      detach: opts.detach,
      name: ctx.name,
    });
  }

  async attach(ctx: InstanceContext, stdio: StdioStreams): Promise<void> {
    const s = await ctlOpen(ctx.dir, { op: 'attach' }, ctx.name);
    if (!s.answer.ok) {
      s.socket.destroy();
      throw vmError(ctx.name, s.answer, 'attach to');
    }
    await pumpSession(s.socket, s.rest, stdio, {
      tty: ctx.config.tty,
      stdin: ctx.config.stdin,
      detach: false,
      name: ctx.name,
    }).catch(() => undefined);
  }

  /**
   * The VM's serial console (hull console): output as it comes, input to the guest's serial port. Ends when
   * the VM stops or the user types the detach key (Ctrl-], as virsh and telnet). Resolves with how it ended.
   */
  async console(ctx: InstanceContext, stdio: StdioStreams, detachKey = 0x1d): Promise<'detached' | 'stopped'> {
    const s = await ctlOpen(ctx.dir, { op: 'console' }, ctx.name);
    if (!s.answer.ok) {
      s.socket.destroy();
      throw vmError(ctx.name, s.answer, 'attach to the console of');
    }
    const sock = s.socket;
    return new Promise((resolve) => {
      let done = false;
      const input = stdio.stdin;
      const finish = (how: 'detached' | 'stopped'): void => {
        if (done) return;
        done = true;
        input?.removeListener('data', onInput);
        sock.destroy();
        resolve(how);
      };
      const onInput = (chunk: Buffer | string): void => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        const k = b.indexOf(detachKey);
        if (k >= 0) {
          if (k > 0) sock.write(b.subarray(0, k));
          finish('detached');
          return;
        }
        sock.write(b);
      };
      sock.on('data', (b: Buffer) => stdio.stdout.write(b));
      sock.on('close', () => finish('stopped'));
      sock.on('error', () => undefined);
      sock.resume();
      if (s.rest.length) stdio.stdout.write(s.rest);
      if (input) {
        input.on('data', onInput);
        input.resume?.();
      }
    });
  }

  /** A disk VM's addresses as its guest agent last reported them (the monitor refreshes them every 10 s). */
  guestAddresses(ctx: InstanceContext): string[] {
    try {
      const g = JSON.parse(readFileSync(instancePaths(ctx.dir).guestNet, 'utf8')) as { addresses: GuestAddress[] };
      return g.addresses.map((a) => `${a.interface} ${a.address}/${a.prefix}`);
    } catch {
      return []; // no guest agent, not running, or not reported yet
    }
  }

  private requireDisk(ctx: InstanceContext, what: string): void {
    if (!ctx.config.vm?.disk)
      throw new HostSupportError(
        `${what} VM ${ctx.name} is done by the QEMU guest agent of full OS VMs; this one runs hull's agent (hull exec works in it)`,
      );
  }

  async copyFileIn(ctx: InstanceContext, hostPath: string, path: string): Promise<void> {
    this.requireDisk(ctx, 'copying files into');
    await guestCopyIn(ctx.dir, ctx.name, hostPath, path);
  }

  async copyFileOut(ctx: InstanceContext, path: string, hostPath: string): Promise<void> {
    this.requireDisk(ctx, 'copying files out of');
    await guestCopyOut(ctx.dir, ctx.name, path, hostPath);
  }

  freezeFilesystems(ctx: InstanceContext): Promise<number> {
    this.requireDisk(ctx, 'freezing the file systems of');
    return guestFreeze(ctx.dir, ctx.name);
  }

  thawFilesystems(ctx: InstanceContext): Promise<number> {
    this.requireDisk(ctx, 'thawing the file systems of');
    return guestThaw(ctx.dir, ctx.name);
  }

  logPath(ctx: InstanceContext): string {
    return instancePaths(ctx.dir).log;
  }

  /** inspect: the machine as create set it up (vm.json), the disk overlay and the log files. */
  describe(ctx: InstanceContext): DriverDescription {
    const p = instancePaths(ctx.dir);
    let m: MonitorConfig | undefined;
    try {
      m = JSON.parse(readFileSync(p.vmConfig, 'utf8')) as MonitorConfig;
    } catch {
      m = undefined; // not created yet, or removed under us: the config alone
    }
    const at = m ? m.argv.indexOf('-M') : -1;
    const machine = m && at >= 0 ? m.argv[at + 1]?.split(',')[0] : undefined;
    const v = ctx.config.vm ?? {};
    const disk = rootDiskPath(ctx);
    return {
      graphDriver: { Name: 'qcow2', Data: { Disk: disk } },
      details: {
        Runtime: 'qemu',
        Mode: m?.mode ?? (v.disk ? 'disk' : 'agent'),
        Machine: machine || null,
        Accel: m?.accel ?? v.accel ?? 'auto',
        DeviceModel: m?.deviceModel ?? v.deviceModel ?? 'virtio',
        Cpus: m?.cpus ?? null,
        Memory: m?.memory ?? null,
        Kernel: v.kernel ?? m?.kernel ?? null,
        Initrd: v.initrd ?? null,
        // started by restoring this VM template (vm/template.ts), or null: booted
        Template: m?.restore?.template ?? null,
        // the writable root disk: in its storage pool, the user's file (--disk-in-place), or the instance dir's
        Disk: disk,
        DiskFormat: v.disk && (v.rootDisk || v.diskInPlace) ? (v.diskFormat ?? null) : 'qcow2',
        StoragePool: v.pool ?? null,
        DiskSize: v.diskSize ?? null,
        ...(v.disk ? { DiskImage: v.disk, DiskInPlace: !!v.diskInPlace } : {}),
        ConsolePath: m?.consolePath ?? p.console,
        ...(v.disk
          ? {
              Firmware: m?.firmware ?? v.firmware ?? 'bios',
              CloudInit: {
                Seed: p.seed,
                UserData: v.cloudInit?.userData !== undefined ? 'user' : 'hull',
                NetworkConfig: v.cloudInit?.networkConfig !== undefined ? 'user' : 'hull',
                SshKeys: v.cloudInit?.sshKeys?.length ?? 0,
              },
              GuestAddresses: this.guestAddresses(ctx),
            }
          : {}),
        MonitorLogPath: p.monitorLog,
        QemuLogPath: p.qemuLog,
        Display: v.display === 'vnc' ? 'vnc' : null,
        VncSocket: v.display === 'vnc' ? p.vncSocket : null,
      },
    };
  }

  /** Stop the monitor (and with it QEMU); keep the disk and the log for a later start. */
  async cleanupAfterExit(ctx: Pick<InstanceContext, 'dir' | 'name'>): Promise<void> {
    const pid = this.monitorPid(ctx);
    if (this.monitorAlive(ctx, pid)) {
      await Promise.race([
        ctlRequest(ctx.dir, { op: 'shutdown' }, ctx.name).catch(() => undefined),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
      const deadline = Date.now() + 5000;
      while (this.monitorAlive(ctx, pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (this.monitorAlive(ctx, pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }
    }
    // QEMU dies with its monitor (parent-death signal); make sure of it
    const qpid = readInt(instancePaths(ctx.dir).qemuPid) ?? 0;
    if (processAlive(qpid) && (processArgv(qpid) ?? []).some((a) => a.includes('qemu-system'))) {
      try {
        process.kill(qpid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 3000;
      while (processAlive(qpid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    for (const f of instancePaths(ctx.dir).vmSockets) rmSync(f, { force: true });
  }

  async delete(ctx: Pick<InstanceContext, 'dir' | 'name'>): Promise<void> {
    await this.cleanupAfterExit(ctx);
    await rm(ctx.dir, { recursive: true, force: true });
  }

  /**
   * recovery.tearDown: a VM without a usable record. Its delete (the monitor, QEMU, its files), then any of
   * its processes no pid file named (QEMU of a monitor that is gone, a volume's virtiofsd).
   */
  private async tearDownOrphan(scope: RecoveryScope, id: string): Promise<string[]> {
    const problems: string[] = [];
    await this.delete({ dir: join(scope.instancesDir, id), name: id.slice(0, 12) }).catch((e: Error) =>
      problems.push(e.message),
    );
    const left = findVmProcesses(scope).filter((p) => p.id === id);
    const alive = new Set(await killAndWait(left.map((p) => p.pid)));
    for (const p of left) if (alive.has(p.pid)) problems.push(`${p.program} (pid ${p.pid}) does not exit`);
    return problems;
  }
}

/** The processes of the root's VMs that run now: monitors, QEMU, volumes' virtiofsd. */
function findVmProcesses(scope: RecoveryScope): (FoundProcess & { id: string })[] {
  const out: (FoundProcess & { id: string })[] = [];
  for (const p of processesNamingInstances([scope.instancesDir])) {
    const prog = p.argv[0]!.split('/').pop()!;
    let program: string;
    if (p.argv.some((a) => a.endsWith('vm-monitor.cjs') || a.endsWith('monitor-main.ts'))) program = 'vm-monitor';
    else if (prog.startsWith('qemu-system')) program = 'qemu';
    else if (prog === 'virtiofsd') program = 'virtiofsd';
    else continue;
    out.push({ pid: p.pid, id: p.id, program, main: program === 'vm-monitor' });
  }
  return out;
}

/** recovery.findRemains: the VMs' processes and their settings files (vm.json in the instance directory). */
function findVmRemains(scope: RecoveryScope): DriverRemains[] {
  const all = new Map<string, DriverRemains>();
  const of = (id: string): DriverRemains => {
    let r = all.get(id);
    if (!r) all.set(id, (r = { id, files: false, processes: [], state: [] }));
    return r;
  };
  let ids: string[] = [];
  try {
    ids = readdirSync(scope.instancesDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    /* no instances yet */
  }
  for (const id of ids) if (existsSync(instancePaths(join(scope.instancesDir, id)).vmConfig)) of(id).files = true;
  for (const { id, ...p } of findVmProcesses(scope)) of(id).processes.push(p);
  return [...all.values()];
}

/** The VM driver's entry in the engine's registry (src/engine/drivers.ts). */
export const vmDriverFactory: DriverFactory = { kind: 'vm', create: () => new VmDriver() };

/** The instance's environment with exec's -e on top (same keys replaced). */
function mergeExecEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...out.values()];
}

/**
 * Copy a session's frames to stdio and stdio to frames, until the process exits; resolves with its
 * exit status. With `detach`, resolves as soon as the process started.
 */
function pumpSession(
  sock: import('node:net').Socket,
  rest: Buffer,
  stdio: StdioStreams,
  o: { tty: boolean; stdin: boolean; detach: boolean; name: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const dec = new FrameDecoder();
    let done = false;
    const input = o.stdin ? stdio.stdin : null;
    const onInput = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (const f of encodeData(T.STDIN, 0, b)) sock.write(f);
    };
    const onInputEnd = (): void => {
      if (!sock.destroyed) sock.write(encodeFrame(T.STDIN, 0));
    };
    const resize = (): void => {
      if (!stdio.size || sock.destroyed) return;
      const { rows, cols } = stdio.size();
      sock.write(encodeFrame(T.RESIZE, 0, resizePayload(rows, cols)));
    };
    const finish = (err: Error | null, code?: number): void => {
      if (done) return;
      done = true;
      if (input) {
        input.removeListener('data', onInput);
        input.removeListener('end', onInputEnd);
      }
      sock.destroy();
      if (err) reject(err);
      else resolve(code ?? 255);
    };
    const onFrames = (b: Buffer): void => {
      for (const f of dec.push(b)) {
        switch (f.type) {
          case T.STDOUT:
            stdio.stdout.write(f.payload);
            break;
          case T.STDERR:
            stdio.stderr.write(f.payload);
            break;
          case T.STARTED:
            if (o.detach) finish(null, 0);
            break;
          case T.EXITED:
            finish(null, f.payload.readInt32LE(0));
            break;
          case T.FAILED: {
            const st = decodeStatus(f.payload);
            finish(
              st.code === 127
                ? new CommandNotFoundError(`${st.message}: executable file not found in the VM's $PATH`)
                : new CommandNotExecutableError(`cannot run the command in VM ${o.name}: ${st.message}`),
            );
            break;
          }
        }
      }
    };
    sock.on('data', onFrames);
    sock.on('close', () => finish(null, 255));
    sock.on('error', () => undefined);
    sock.resume();
    if (rest.length) onFrames(rest);
    if (o.tty) {
      resize();
      stdio.onResize?.(resize);
    }
    if (input) {
      input.on('data', onInput);
      input.once('end', onInputEnd);
      input.resume?.();
    }
  });
}
