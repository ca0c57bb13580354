/**
 * The container driver: composes the host mechanisms (overlay mounts, conmon, runc/crun,
 * cgroup files) into hull's InstanceDriver interface.
 *
 * Files in the instance dir (ctx.dir; each named in src/common/paths.ts):
 *   rootfs/ upper/ work/        overlay mount point, writable layer, overlay work dir
 *   hosts hostname resolv.conf  generated /etc files (bind-mounted)
 *   config.json                 the OCI bundle's spec (rootfs is ctx.dir/rootfs)
 *   ctr.log                     conmon's k8s-file log
 *   pidfile conmon.pid          container and conmon pids
 *   exits/<id>  exits/oom       conmon's exit file (exit code; 128+N for signal N) and OOM marker
 * and outside the root, on the host's run directory (a tmpfs on most hosts), conmon's persist dir
 * /run/hull/exits/<root hash>/<id>/{exit,oom}: conmon writes it before exits/<id>, so a full hull root cannot
 * lose an exit code (conmon gives up at the first exit file it cannot write, and the exit command has no code).
 *   attach ctl winsz            conmon's attach socket and control fifos (--full-attach)
 *   exec/<session>/             exec sessions (process.json, their conmon's socket and fifos)
 * The container's cgroup is /hull/<id> in each hierarchy.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  HostCommandError,
  HostSupportError,
  HullError,
  StateError,
} from '../common/errors.js';
import type {
  ConfigureEnv,
  CreateResult,
  DriverCapabilities,
  DriverDescription,
  DriverFactory,
  DriverRecovery,
  DriverRemains,
  ExecOptions,
  ExitInfo,
  FoundProcess,
  InstanceConfig,
  InstanceContext,
  InstanceDisplay,
  InstanceDriver,
  InstanceStats,
  IsolationRequest,
  KindConfig,
  ProcessInfo,
  RecoveryScope,
  Resources,
  RuntimeStatus,
  StdioStreams,
} from '../common/instance.js';
import {
  cgroupExists,
  cgroupPaths,
  readCgroupPids,
  readCgroupStats,
  removeCgroup,
  v1Mounts,
  waitFrozen,
} from '../host/cgroups.js';
import { spawnConmon, type ConmonProcess, type SyncMessage } from '../host/conmon.js';
import { mountsUnder } from '../host/mount.js';
import { killAndWait, processAlive, processArgv, processesNamingInstances, runProgram } from '../host/proc.js';
import { readExitRecord, waitForExitRecord } from '../host/exitwatch.js';
import { probeHost, versionAtLeast } from '../host/probe.js';
import { OciRuntime, runtimeErrorMessage, runtimeStateDir, type RuntimeResourceUpdate } from '../host/runtime.js';
import { attachStreams, connectAttach, pumpAttached, resizeTerminal, setConsoleSize } from './attach.js';
import type { OciSpec } from './oci-spec.js';
import { mountRootfs, rootfsLayout, unmountRootfs } from './rootfs.js';
import { configureContainer, containerOptions, defaultContainerOptions } from './options.js';
import { KNOWN_RUNTIMES } from './runtime-choice.js';
import { buildExecProcess, buildResources, buildRuntimeSpec, probeHostFacts } from './spec.js';
import { hostPaths, instancePaths, VNC_SOCKET } from '../common/paths.js';
import { initBinary } from '../host/programs.js';
import { findXvncs, isXvncOf, startXvnc, stopXvnc, X11_SOCKET_DIR } from '../host/xvnc.js';
import { execSizeIsLate, TTYWAIT_EXEC_PATH, ttyWaitBinary } from './ttywait.js';

/** How often waitExit checks that conmon is still alive (and re-checks the exit file). */
const SUPERVISOR_POLL_MS = 100;

/** Where conmon's persist dirs of a root's containers go: /run/hull/exits/<hash of the root>. */
export function persistBase(root: string): string {
  return hostPaths.exitsOf(createHash('sha256').update(resolve(root)).digest('hex').slice(0, 16));
}

/** The cgroup path of a container (cgroupfs style, as in the spec's linux.cgroupsPath). */
export function containerCgroupsPath(id: string): string {
  return `/hull/${id}`;
}

/**
 * Turn a runtime's failure to run the user's command into the error docker users expect:
 * not found → CommandNotFoundError (exit 127), not executable → CommandNotExecutableError
 * (exit 126). Other failures stay HostCommandErrors.
 *
 * runc says `exec: "foo": executable file not found in $PATH`, `exec: "/x": stat /x: no such
 * file or directory` or `exec: "/etc": permission denied`; crun says `executable file `foo`
 * not found in $PATH: No such file or directory`, `open executable: Permission denied` or, for a
 * directory, `open executable: Operation not permitted`.
 */
export function mapRuntimeError(runtime: string, verb: string, message: string, command: readonly string[]): HullError {
  const msg = runtimeErrorMessage(message) || message.trim();
  const argv0 = command[0] ?? '';
  const aboutCommand =
    argv0 !== '' && (msg.includes(`"${argv0}"`) || msg.includes(`\`${argv0}\``) || msg.includes(argv0));
  const execStage = /exec:|executable|exec failed|starting container process|unable to start container process/i.test(
    msg,
  );
  if (
    /executable file not found|executable file `.*` not found/i.test(msg) ||
    (aboutCommand && execStage && /no such file or directory/i.test(msg))
  ) {
    return new CommandNotFoundError(
      `${argv0}: executable file not found in the container's $PATH (or the path does not exist); check the command and the image`,
    );
  }
  if (
    ((aboutCommand || execStage) && /permission denied|exec format error|is a directory/i.test(msg)) ||
    /open executable: operation not permitted/i.test(msg)
  ) {
    const why = /exec format error/i.test(msg)
      ? 'not a valid executable for this host (exec format error)'
      : 'permission denied (not an executable file)';
    return new CommandNotExecutableError(`${argv0}: cannot run it in the container: ${why}`);
  }
  return new HostCommandError(runtime, [verb], null, msg);
}

/**
 * Refuse resource settings the chosen runtime cannot apply on this host, in one clear line,
 * before anything is started. crun before 1.10 writes only blkio.weight on cgroup v1, which
 * kernels without CFQ lack (BFQ offers blkio.bfq.weight; runc uses it).
 */
export function checkRuntimeResources(rt: OciRuntime, resources: Resources, layout: string): void {
  if (!resources.blkioWeight || rt.name !== 'crun' || layout === 'v2') return;
  if (rt.version && versionAtLeast(rt.version, 1, 10)) return;
  const root = v1Mounts().get('blkio');
  if (root && !existsSync(join(root, 'blkio.weight'))) {
    const crun = rt.version ? `crun ${rt.version}` : 'this crun';
    throw new HostSupportError(
      `--blkio-weight is not supported with ${crun} on this host (the kernel offers only BFQ's blkio.bfq.weight, which crun handles from 1.10); use --runtime runc or leave --blkio-weight out`,
    );
  }
}

/** A short random id for exec sessions. */
function sessionId(): string {
  return randomBytes(8).toString('hex');
}

function readInt(path: string): number | null {
  try {
    const n = parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** Sum rx/tx bytes of /proc/<pid>/net/dev, loopback excluded. */
function readNetDev(pid: number): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  try {
    const lines = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2);
    for (const line of lines) {
      const [name, rest] = line.split(':');
      if (!rest || name!.trim() === 'lo') continue;
      const f = rest.trim().split(/\s+/).map(Number);
      rx += f[0] ?? 0;
      tx += f[8] ?? 0;
    }
  } catch {
    /* process gone */
  }
  return { rx, tx };
}

/** Parse `ps` output into titles and rows; the last column (the command) keeps its spaces. */
export function parsePsOutput(out: string): ProcessInfo {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return { titles: [], rows: [] };
  const titles = lines[0]!.trim().split(/\s+/);
  const rows = lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    return [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
  });
  return { titles, rows };
}

/** hull's container driver: runc or crun under conmon, overlay root filesystems, cgroupfs. */
export class ContainerDriver implements InstanceDriver {
  readonly kind = 'container' as const;
  readonly supervisorName = 'conmon';
  readonly capabilities: DriverCapabilities = {
    liveNetworkChanges: true,
    console: false,
    diskImages: false,
    sharedNamespaces: true,
  };
  private readonly runtimes = new Map<string, OciRuntime>();
  readonly recovery: DriverRecovery = {
    findRemains: (scope) => findContainerRemains(scope),
    tearDown: (scope, id, found) => this.tearDownOrphan(scope, id, found),
  };
  /** terminal sizes of the clients attached to a container, for its start (see start) */
  private readonly attachedSizes = new Map<string, () => { rows: number; cols: number }>();

  /** The container section: security settings, user namespace, rlimits, and the OCI runtime (crun when it works here). */
  configure(req: IsolationRequest, env: ConfigureEnv): KindConfig {
    return { container: configureContainer(req, env) };
  }

  supervisorAlive(ctx: InstanceContext, pid: number): boolean {
    return this.conmonAlive(ctx, pid);
  }

  /** The OCI runtime the instance uses (its state dir under <root>/run/<name>). */
  runtime(ctx: InstanceContext): OciRuntime {
    const name = containerOptions(ctx.config).runtime || 'runc';
    const key = `${ctx.root}\0${name}`;
    let rt = this.runtimes.get(key);
    if (!rt) {
      rt = OciRuntime.open(name, ctx.root);
      this.runtimes.set(key, rt);
    }
    return rt;
  }

  private exitsDir(ctx: InstanceContext): string {
    return instancePaths(ctx.dir).exits;
  }

  /** conmon's persist dir, off the hull root (see the file's comment). */
  private persistDir(ctx: InstanceContext): string {
    return join(persistBase(ctx.root), ctx.id);
  }

  private runtimeHasState(ctx: InstanceContext): boolean {
    return this.runtime(ctx).hasState(ctx.id);
  }

  private conmonPid(ctx: InstanceContext): number {
    return readInt(instancePaths(ctx.dir).conmonPid) ?? 0;
  }

  /** conmon of this container is alive (the pid is a conmon for this id, not a recycled pid). */
  private conmonAlive(ctx: InstanceContext, pid = this.conmonPid(ctx)): boolean {
    if (!processAlive(pid)) return false;
    const argv = processArgv(pid);
    return argv !== null && argv.some((a) => a.endsWith('conmon')) && argv.includes(ctx.id);
  }

  async create(ctx: InstanceContext): Promise<CreateResult> {
    const rt = this.runtime(ctx);
    checkRuntimeResources(rt, ctx.config.resources, probeHost().cgroupLayout);
    const exits = this.exitsDir(ctx);
    mkdirSync(ctx.dir, { recursive: true, mode: 0o700 });
    // a previous run's leftovers (start after exit re-creates): keep upper/ and the log
    rmSync(exits, { recursive: true, force: true });
    mkdirSync(exits);
    const persist = this.persistDir(ctx);
    rmSync(persist, { recursive: true, force: true });
    mkdirSync(persist, { recursive: true, mode: 0o700 });
    for (const f of instancePaths(ctx.dir).conmonFiles) rmSync(f, { force: true });
    if (this.runtimeHasState(ctx)) await rt.delete(ctx.id, true);

    const host = probeHost();
    // --display: the application's own X server, started before it (alongside the root filesystem's mount)
    const xserver = ctx.config.container?.display === 'vnc' ? this.startDisplay(ctx) : undefined;
    xserver?.catch(() => undefined); // awaited below; a failure before then is not unhandled
    // conmon starts right away and waits on its start pipe while the root filesystem is
    // mounted and the spec written, so its startup overlaps that work
    const conmon = spawnConmon(
      {
        id: ctx.id,
        uuid: ctx.id,
        name: ctx.name,
        runtimePath: rt.path,
        runtimeArgs: rt.globalArgs,
        bundle: ctx.dir,
        pidFile: instancePaths(ctx.dir).pidfile,
        conmonPidFile: instancePaths(ctx.dir).conmonPid,
        // --log-driver none: no log; json-file is written in conmon's k8s-file format (podman's alias), and
        // max-size is conmon's --log-size-max (conmon replaces the full file: it keeps no rotated files)
        ...(ctx.config.log?.driver === 'none' ? {} : { logPath: this.logPath(ctx) }),
        ...(ctx.config.log?.maxSize ? { logSizeMax: ctx.config.log.maxSize } : {}),
        exitDir: exits,
        persistDir: persist,
        terminal: ctx.config.tty,
        stdin: ctx.config.stdin,
        exitCommand: ctx.exitCommand,
      },
      { cwd: ctx.dir, withStart: true },
    );
    try {
      const { rootfs, mounts, hostname, shm } = await mountRootfs(ctx);
      const spec = buildRuntimeSpec({
        id: ctx.id,
        config: ctx.config,
        rootfs,
        cgroupsPath: containerCgroupsPath(ctx.id),
        cgroupNamespace: host.cgroupNamespace,
        hostNofileHard: host.nofileHard,
        extraMounts: mounts,
        ...(ctx.network ? { netnsPath: ctx.network.netnsPath } : {}),
        ...(ctx.joined ? { joined: ctx.joined } : {}),
        ...(hostname !== undefined ? { hostname } : {}),
        ...(shm !== undefined ? { shm } : {}),
        ...(ctx.config.init ? { initBinary: initBinary() } : {}),
      });
      if (xserver) graphicalSpec(spec, ctx, (await xserver).display);
      // regenerated on every create: no need for a durable (fsync'd) write on the hot path
      writeFileSync(instancePaths(ctx.dir).config, JSON.stringify(spec));
      conmon.signalStart();
      const pid = await this.awaitPid(conmon, rt.name, 'create', ctx.config.command);
      await conmon.checkLaunched();
      conmon.closeAll();
      return { supervisorPid: this.conmonPid(ctx), pid };
    } catch (e) {
      conmon.abort();
      await this.cleanupAfterExit(ctx).catch(() => undefined);
      throw e;
    }
  }

  /** A graphical container's Xvnc (--display): its private X socket dir and VNC socket in the instance dir. */
  private startDisplay(ctx: InstanceContext): Promise<{ pid: number; display: number }> {
    const p = instancePaths(ctx.dir);
    return startXvnc({
      dir: ctx.dir,
      socketDir: p.x11Dir,
      vncSocket: VNC_SOCKET,
      pidFile: p.xvncPid,
      logFile: p.xvncLog,
      desktop: `hull ${ctx.name}`,
    });
  }

  /** Stop the instance's Xvnc, if it has one running, and drop its sockets. */
  private async stopDisplay(ctx: Pick<InstanceContext, 'dir' | 'name'>): Promise<void> {
    const p = instancePaths(ctx.dir);
    const pid = readInt(p.xvncPid) ?? 0;
    if (isXvncOf(pid, ctx.dir) && !(await stopXvnc(pid)))
      throw new HullError(
        `the X server (Xvnc, pid ${pid}) of ${ctx.name} does not exit; kill it and run the command again`,
      );
    for (const f of [p.xvncPid, p.vncSocket, p.x11Dir]) rmSync(f, { recursive: true, force: true });
  }

  /** --display vnc: the Xvnc's VNC socket (while the container runs). */
  display(ctx: InstanceContext): InstanceDisplay | null {
    return ctx.config.container?.display === 'vnc' ? { type: 'vnc', socket: instancePaths(ctx.dir).vncSocket } : null;
  }

  /** Wait for conmon's first sync message: the pid, or the runtime's error mapped to hull's. */
  private async awaitPid(
    conmon: ConmonProcess,
    runtime: string,
    verb: string,
    command: readonly string[],
  ): Promise<number> {
    let msg: SyncMessage | null;
    try {
      msg = await conmon.nextSync();
    } catch (e) {
      conmon.closeAll();
      throw new HostCommandError('conmon', [verb], null, (e as Error).message);
    }
    if (msg === null) {
      await conmon.checkLaunched().catch((e) => {
        conmon.closeAll();
        throw e;
      });
      conmon.closeAll();
      throw new HostCommandError(
        'conmon',
        [verb],
        null,
        conmon.errorOutput || `conmon exited before ${runtime} ${verb} reported`,
      );
    }
    if (msg.data <= 0) {
      conmon.closeAll();
      throw mapRuntimeError(runtime, verb, msg.message ?? `failed with status ${msg.data}`, command);
    }
    return msg.data;
  }

  async start(ctx: InstanceContext): Promise<void> {
    // A client attached to this (created) container's terminal: its size goes on the terminal before the process
    // runs. Through conmon the resize would be asynchronous (its ctl fifo), and the process could read 0x0 first.
    const size = this.attachedSizes.get(ctx.id)?.();
    if (ctx.config.tty && size)
      await setConsoleSize(readInt(instancePaths(ctx.dir).pidfile) ?? 0, size.rows, size.cols);
    try {
      await this.runtime(ctx).start(ctx.id);
    } catch (e) {
      if (e instanceof HostCommandError) throw mapRuntimeError(e.program, 'start', e.stderr, ctx.config.command);
      throw e;
    }
  }

  async kill(ctx: InstanceContext, signal: string, all = false): Promise<void> {
    try {
      await this.runtime(ctx).kill(ctx.id, signal, all);
    } catch (e) {
      if (e instanceof HostCommandError && /not running|does not exist|No such file|no such process/i.test(e.stderr)) {
        throw new StateError(`cannot signal container ${ctx.name}: it is not running`);
      }
      throw e;
    }
  }

  async status(ctx: InstanceContext): Promise<{ status: RuntimeStatus; pid: number }> {
    const st = await this.runtime(ctx).state(ctx.id);
    if (!st) return { status: 'stopped', pid: 0 };
    switch (st.status) {
      case 'creating':
      case 'created':
        return { status: 'created', pid: st.pid };
      case 'running':
        return { status: 'running', pid: st.pid };
      case 'paused':
        return { status: 'paused', pid: st.pid };
      case 'stopped':
        return { status: 'stopped', pid: 0 };
      default:
        return { status: 'unknown', pid: st.pid ?? 0 };
    }
  }

  exitInfo(ctx: InstanceContext): ExitInfo | null {
    const exits = this.exitsDir(ctx);
    const persist = this.persistDir(ctx);
    // the copy off the root first: conmon writes it first, and it is all there is when the root was full
    const info: ExitInfo | null = readExitRecord(persist, 'exit') ?? readExitRecord(exits, ctx.id);
    if (info && (existsSync(join(persist, 'oom')) || existsSync(instancePaths(ctx.dir).exitOom))) {
      info.reason = 'OOM killed';
      info.oomKilled = true;
    }
    return info;
  }

  waitExit(ctx: InstanceContext, signal?: AbortSignal): Promise<ExitInfo> {
    return waitForExitRecord({
      dir: this.exitsDir(ctx),
      read: () => this.exitInfo(ctx),
      supervisorAlive: () => this.conmonAlive(ctx),
      whenSupervisorDied: () => ({ exitCode: 255, finishedAt: Date.now(), reason: 'conmon exited unexpectedly' }),
      pollMs: SUPERVISOR_POLL_MS,
      ...(signal ? { signal } : {}),
    });
  }

  async pause(ctx: InstanceContext): Promise<void> {
    await this.runtime(ctx).pause(ctx.id);
    // paused means every process stopped, not just asked to (crun returns while a v1 freezer is FREEZING)
    await waitFrozen(cgroupPaths(containerCgroupsPath(ctx.id), probeHost().cgroupLayout));
  }

  async resume(ctx: InstanceContext): Promise<void> {
    await this.runtime(ctx).resume(ctx.id);
  }

  async update(ctx: InstanceContext, resources: Resources): Promise<void> {
    checkRuntimeResources(this.runtime(ctx), resources, probeHost().cgroupLayout);
    // the spec generator's checks and docker semantics (e.g. swap defaults to twice the memory)
    const r = buildResources(resources, probeHostFacts());
    const u: RuntimeResourceUpdate = {};
    if (r.memory?.limit !== undefined) u.memory = r.memory.limit;
    // --memory past what can be counted (0): lift the limit, swap first (v1 keeps memsw >= memory)
    else if (resources.memory === 0) {
      u.memory = -1;
      u.memorySwap ??= -1;
    }
    if (r.memory?.swap !== undefined) u.memorySwap = r.memory.swap;
    if (r.cpu?.quota !== undefined) u.cpuQuota = r.cpu.quota;
    if (r.cpu?.period !== undefined) u.cpuPeriod = r.cpu.period;
    if (r.cpu?.shares !== undefined) u.cpuShares = r.cpu.shares;
    if (r.cpu?.cpus !== undefined) u.cpusetCpus = r.cpu.cpus;
    if (r.cpu?.mems !== undefined) u.cpusetMems = r.cpu.mems;
    if (r.pids?.limit !== undefined) u.pidsLimit = r.pids.limit;
    if (r.blockIO?.weight !== undefined) u.blkioWeight = r.blockIO.weight;
    await this.runtime(ctx).update(ctx.id, u);
  }

  async stats(ctx: InstanceContext): Promise<InstanceStats> {
    const paths = cgroupPaths(containerCgroupsPath(ctx.id), probeHost().cgroupLayout);
    if (!cgroupExists(paths)) throw new StateError(`no statistics for container ${ctx.name}: it is not running`);
    const s = readCgroupStats(paths);
    const pid = readInt(instancePaths(ctx.dir).pidfile) ?? 0;
    const net = pid > 0 ? readNetDev(pid) : { rx: 0, tx: 0 };
    return {
      cpuUsageNs: s.cpuUsageNs,
      memoryUsage: s.memoryUsage,
      memoryLimit: s.memoryLimit,
      pids: s.pids,
      blkioRead: s.blkioRead,
      blkioWrite: s.blkioWrite,
      netRx: net.rx,
      netTx: net.tx,
    };
  }

  async top(ctx: InstanceContext, psArgs: string[]): Promise<ProcessInfo> {
    const paths = cgroupPaths(containerCgroupsPath(ctx.id), probeHost().cgroupLayout);
    let pids = readCgroupPids(paths);
    if (pids.length === 0)
      pids = await this.runtime(ctx)
        .ps(ctx.id)
        .catch(() => []);
    if (pids.length === 0) throw new StateError(`cannot list processes of container ${ctx.name}: it is not running`);
    // docker top: host ps with the user's options (default -ef), asked for the container's pids with -q (ps
    // refuses -q with some options, e.g. forest listings: then all processes), rows kept by their PID column
    const args = psArgs.length ? psArgs : ['-ef'];
    let r = await runProgram('ps', [...args, '-q', pids.join(',')], { allowFailure: true });
    if (r.status !== 0) r = await runProgram('ps', args, { allowFailure: true });
    if (r.status !== 0 && !r.stdout) throw new HostCommandError('ps', args, r.status, r.stderr);
    const all = parsePsOutput(r.stdout);
    const col = all.titles.indexOf('PID');
    if (col < 0)
      throw new HostCommandError(
        'ps',
        args,
        null,
        'the output has no PID column',
        'include a PID column (e.g. -ef, aux or -o pid,comm)',
      );
    const want = new Set(pids.map(String));
    return { titles: all.titles, rows: all.rows.filter((row) => want.has(row[col]!)) };
  }

  async exec(ctx: InstanceContext, opts: ExecOptions, stdio: StdioStreams): Promise<number> {
    const rt = this.runtime(ctx);
    let base: OciSpec;
    try {
      base = JSON.parse(readFileSync(instancePaths(ctx.dir).config, 'utf8')) as OciSpec;
    } catch {
      throw new StateError(`cannot exec in container ${ctx.name}: it has no runtime bundle (is it running?)`);
    }
    const proc = buildExecProcess(base, opts, rootfsLayout(ctx.dir).rootfs, containerOptions(ctx.config).groupAdd);
    if (opts.tty && stdio.size) {
      const { rows, cols } = stdio.size();
      proc.consoleSize = { height: rows, width: cols };
    }
    // a runtime that sets the size only after the process may have started: run it through hull-ttywait
    // (./ttywait.ts), handed to conmon as fd 3 and passed on by the runtime
    const waitBinary = proc.consoleSize && execSizeIsLate(rt.name) ? ttyWaitBinary() : undefined;
    if (waitBinary) proc.args = [TTYWAIT_EXEC_PATH, ...proc.args];
    const sid = sessionId();
    const dir = instancePaths(ctx.dir).execDir(sid);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const spec = join(dir, 'process.json');
    writeFileSync(spec, JSON.stringify(proc));
    const attach = !opts.detach;
    const waitFd = waitBinary ? openSync(waitBinary, 'r') : undefined;
    let conmon: ConmonProcess;
    try {
      conmon = spawnConmon(
        {
          id: ctx.id,
          uuid: sid,
          name: ctx.name,
          runtimePath: rt.path,
          runtimeArgs: rt.globalArgs,
          bundle: dir,
          pidFile: join(dir, 'pid'),
          exitDir: dir,
          terminal: opts.tty,
          stdin: attach && opts.stdin && stdio.stdin !== null,
          exec: { processSpec: spec, attach },
          ...(waitFd !== undefined ? { runtimeOpts: ['--preserve-fds=1'] } : {}),
        },
        { cwd: dir, ...(waitFd !== undefined ? { passFds: [waitFd] } : {}) },
      );
    } finally {
      if (waitFd !== undefined) closeSync(waitFd); // conmon has its own copy
    }

    if (!attach) {
      try {
        await this.awaitPid(conmon, rt.name, 'exec', opts.command);
      } finally {
        conmon.closeAll();
      }
      return 0;
    }

    try {
      conmon.signalStart(); // conmon's first read: go ahead and set up
      const ready = await conmon.nextAttach();
      if (!ready) {
        await conmon.checkLaunched();
        throw new HostCommandError(
          'conmon',
          ['exec'],
          null,
          conmon.errorOutput || 'conmon exited before its attach socket was ready',
        );
      }
      const sock = await connectAttach(dir);
      if (opts.tty && stdio.size) {
        const { rows, cols } = stdio.size();
        resizeTerminal(dir, rows, cols);
      }
      conmon.signalStart(); // second read: the client is attached, run the process
      try {
        await this.awaitPid(conmon, rt.name, 'exec', opts.command);
      } catch (e) {
        sock.destroy();
        throw e;
      }
      const streams: StdioStreams = opts.stdin ? stdio : { ...stdio, stdin: null };
      await pumpAttached(sock, dir, streams, { tty: opts.tty });
      const done = await conmon.nextSync();
      conmon.closeAll();
      if (done === null) {
        // conmon died without a report: fall back to its exit file
        return readInt(join(dir, sid)) ?? 255;
      }
      return done.data < 0 ? 255 : done.data;
    } finally {
      conmon.closeAll();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async attach(ctx: InstanceContext, stdio: StdioStreams): Promise<void> {
    // set before the first await: `run -it` and `start -a` attach, then start (which applies the size)
    const size = stdio.size;
    if (ctx.config.tty && size) this.attachedSizes.set(ctx.id, size);
    const streams: StdioStreams = ctx.config.stdin ? stdio : { ...stdio, stdin: null };
    try {
      await attachStreams(ctx.dir, streams, { tty: ctx.config.tty });
    } finally {
      if (this.attachedSizes.get(ctx.id) === size) this.attachedSizes.delete(ctx.id);
    }
  }

  logPath(ctx: InstanceContext): string {
    return instancePaths(ctx.dir).log;
  }

  /** inspect: the overlay root filesystem and the OCI runtime. */
  describe(ctx: InstanceContext): DriverDescription {
    const p = instancePaths(ctx.dir);
    return {
      graphDriver: { Name: 'overlay', Data: { MergedDir: p.rootfs, UpperDir: p.upper, WorkDir: p.work } },
      details: {
        Runtime: ctx.config.container?.runtime ?? null,
        BundlePath: ctx.dir,
        Display: ctx.config.container?.display ?? null,
        VncSocket: ctx.config.container?.display === 'vnc' ? p.vncSocket : null,
      },
      etcFiles: { resolvConf: p.resolvConf, hostname: p.hostname, hosts: p.hosts },
    };
  }

  async cleanupAfterExit(ctx: InstanceContext): Promise<void> {
    // The host's overlay mount is independent of the container's mount namespace, so the
    // runtime's delete and the unmount can run side by side.
    const rt = this.runtime(ctx);
    const results = await Promise.allSettled([
      this.runtimeHasState(ctx) ? rt.delete(ctx.id, true) : Promise.resolve(false),
      unmountRootfs(ctx.dir),
      this.stopDisplay(ctx),
    ]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  async delete(ctx: InstanceContext): Promise<void> {
    const problems: string[] = [];
    const conmonPid = this.conmonPid(ctx); // read before its pid file goes
    // Files outside the overlay go while the runtime and umount(8) run (unlinks are not free
    // on every filesystem); the overlay's own directories only once it is unmounted.
    const L = rootfsLayout(ctx.dir);
    const overlayDirs = new Set([L.rootfs, L.upper, L.work, L.empty]);
    const removeLoose = async (): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(ctx.dir);
      } catch {
        return; // nothing there
      }
      await Promise.all(
        names
          .map((n) => join(ctx.dir, n))
          .filter((p) => !overlayDirs.has(p))
          .map((p) => rm(p, { recursive: true, force: true })),
      );
    };
    const [cleanup] = await Promise.allSettled([this.cleanupAfterExit(ctx), removeLoose()]);
    if (cleanup.status === 'rejected') problems.push((cleanup.reason as Error).message);
    // conmon may outlive a container that never started, or be stuck
    if (this.conmonAlive(ctx, conmonPid)) {
      try {
        process.kill(conmonPid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    const left = removeCgroup(cgroupPaths(containerCgroupsPath(ctx.id), probeHost().cgroupLayout));
    if (left.length > 0) problems.push(`cgroups still in use: ${left.join(', ')}`);
    if (mountsUnder(ctx.dir).length > 0) {
      // never rm -rf through a mount: it would delete into whatever is mounted there
      await unmountRootfs(ctx.dir).catch(() => undefined);
    }
    await rm(this.persistDir(ctx), { recursive: true, force: true });
    try {
      rmdirSync(persistBase(ctx.root)); // the root's own dir goes with its last instance
    } catch {
      /* others remain, or gone */
    }
    if (mountsUnder(ctx.dir).length === 0) {
      await rm(ctx.dir, { recursive: true, force: true });
    } else {
      problems.push(`mounts remain under ${ctx.dir}`);
    }
    if (problems.length > 0) {
      throw new HullError(
        `container ${ctx.name} removed with leftovers: ${problems.join('; ')}; run hull rm -f again once they are free`,
      );
    }
  }

  /**
   * recovery.tearDown: a container without a usable record. The delete of each runtime that keeps state for
   * it (runc when none does), then any conmon of it no pid file named (an exec's), its cgroups, and a check
   * that no runtime still keeps state for it.
   */
  private async tearDownOrphan(scope: RecoveryScope, id: string, found?: DriverRemains): Promise<string[]> {
    const problems: string[] = [];
    const dir = join(scope.instancesDir, id);
    const runtimes = found && found.state.length > 0 ? found.state : ['runc'];
    for (const runtime of runtimes) {
      const ctx: InstanceContext = {
        id,
        name: id.slice(0, 12),
        root: scope.root,
        dir,
        config: orphanConfig(runtime),
        layers: [],
        exitCommand: [],
      };
      await this.delete(ctx).catch((e: Error) => problems.push(e.message));
    }
    const left = findConmons(scope).filter((c) => c.id === id);
    for (const pid of await killAndWait(left.map((c) => c.pid))) problems.push(`conmon (pid ${pid}) does not exit`);
    const xvncs = findXvncs(scope.instancesDir).filter((x) => x.name === id);
    for (const pid of await killAndWait(xvncs.map((x) => x.pid))) problems.push(`Xvnc (pid ${pid}) does not exit`);
    const cgroups = removeCgroup(cgroupPaths(containerCgroupsPath(id), probeHost().cgroupLayout));
    if (cgroups.length > 0) problems.push(`cgroups still in use: ${cgroups.join(', ')}`);
    for (const rt of KNOWN_RUNTIMES) {
      // the runtime's state of a container whose processes are gone now (the delete above ran the runtime's)
      const stateDir = runtimeStateDir(scope.root, rt);
      if (existsSync(join(stateDir, id))) problems.push(`${rt} still keeps state for it in ${stateDir}`);
    }
    return problems;
  }
}

const INSTANCE_ID = /^[0-9a-f]{64}$/;

function instanceIdsIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => INSTANCE_ID.test(n));
  } catch {
    return [];
  }
}

/**
 * A graphical container's spec: its X server's socket dir bound over /tmp/.X11-unix (after every other mount,
 * so that a /tmp volume does not hide it) and DISPLAY naming its display.
 */
function graphicalSpec(spec: OciSpec, ctx: InstanceContext, display: number): void {
  spec.mounts = [
    ...(spec.mounts ?? []),
    {
      destination: X11_SOCKET_DIR,
      type: 'bind',
      source: instancePaths(ctx.dir).x11Dir,
      options: ['bind', 'rprivate', 'nosuid', 'nodev', 'noexec'],
    },
  ];
  if (spec.process) {
    const env = (spec.process.env ?? []).filter((e) => !e.startsWith('DISPLAY='));
    spec.process.env = [...env, `DISPLAY=:${display}`];
  }
}

/** The conmons of the root's containers that run now (the container's own, and exec sessions'). */
function findConmons(scope: RecoveryScope): (FoundProcess & { id: string })[] {
  return processesNamingInstances([scope.instancesDir])
    .filter((p) => p.argv[0]!.split('/').pop() === 'conmon')
    .map((p) => ({ pid: p.pid, id: p.id, program: 'conmon', main: p.argv[p.argv.indexOf('-u') + 1] === p.id }));
}

/**
 * recovery.findRemains: the containers' conmons, their OCI bundles (config.json in the instance directory) and
 * the runtimes' state (<root>/run/runc|crun/<id>).
 */
function findContainerRemains(scope: RecoveryScope): DriverRemains[] {
  const all = new Map<string, DriverRemains>();
  const of = (id: string): DriverRemains => {
    let r = all.get(id);
    if (!r) all.set(id, (r = { id, files: false, processes: [], state: [] }));
    return r;
  };
  for (const id of instanceIdsIn(scope.instancesDir))
    if (existsSync(join(scope.instancesDir, id, 'config.json'))) of(id).files = true;
  for (const { id, ...p } of findConmons(scope)) of(id).processes.push(p);
  // a graphical container's X server (it works in the instance dir)
  for (const x of findXvncs(scope.instancesDir))
    if (INSTANCE_ID.test(x.name)) of(x.name).processes.push({ pid: x.pid, program: 'Xvnc', main: false });
  for (const rt of KNOWN_RUNTIMES)
    for (const id of instanceIdsIn(runtimeStateDir(scope.root, rt))) of(id).state.push(rt);
  return [...all.values()];
}

/** The least configuration the driver's delete reads (the runtime's name), for a container without its record. */
function orphanConfig(runtime: string): InstanceConfig {
  return {
    image: '',
    imageId: '',
    command: [],
    env: [],
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
    container: defaultContainerOptions(runtime),
  };
}

/** The container driver's entry in the engine's registry (src/engine/drivers.ts). */
export const containerDriverFactory: DriverFactory = { kind: 'container', create: () => new ContainerDriver() };
