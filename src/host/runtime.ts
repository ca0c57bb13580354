/**
 * OCI runtime mechanism: runc and crun behind one small class, each with its own state
 * directory (`--root`). No policy here; src/container decides what to run.
 *
 * Commands that start processes (create, exec, update; conmon's `-r`) go through a small shell wrapper,
 * `<hull root>/run/bin/<runtime>` (see wrapperScript): it swaps the host's /dev/null out of the runtime's
 * stdio for hull's private null device (crun before 1.9 chowns a process's stdio to the process's user,
 * which changed the host's /dev/null), and on hybrid cgroup hosts, where crun before 1.9 refuses to run
 * ("cgroups in hybrid mode not supported"), runs crun in a private mount namespace without the cgroup2
 * mount at /sys/fs/cgroup/unified. The wrapper is a plain executable, so conmon can use it as its `-r`
 * runtime too. Commands that start no process (state, start, kill, pause, resume, ps, list, delete) run
 * the runtime directly, which saves the extra processes.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { HostCommandError, HostSupportError, InvalidArgumentError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { runProgram, type RunResult } from './proc.js';
import { findExecutable, probeRuntime, versionAtLeast } from './probe.js';
import { rootPaths } from '../common/paths.js';

/** The runtime's `state` output (OCI runtime spec "state"). */
export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
  bundle: string;
  rootfs?: string;
  created?: string;
  annotations?: Record<string, string>;
}

/** Resource changes for `update`, in runtime units. Unset fields stay as they are. */
export interface RuntimeResourceUpdate {
  /** bytes */
  memory?: number;
  /** memory+swap in bytes, -1 for unlimited */
  memorySwap?: number;
  memoryReservation?: number;
  /** CFS quota and period, microseconds */
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
}

/**
 * Clean up a runtime's error output into one readable line: runc logs through logrus
 * (`time=... level=error msg="..."`) or JSON (`{"level":"error","msg":"..."}`), crun prints
 * plain text. Returns the messages joined with "; ".
 */
export function runtimeErrorMessage(output: string): string {
  const msgs: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('{')) {
      try {
        const j = JSON.parse(line) as { level?: string; msg?: string };
        if (j.msg && (j.level === undefined || j.level === 'error' || j.level === 'fatal')) msgs.push(j.msg);
        continue;
      } catch {
        /* not JSON after all */
      }
    }
    const m = /level=(\w+)\s+msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (m) {
      if (m[1] === 'error' || m[1] === 'fatal')
        msgs.push(m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? ' ' : c)));
      continue;
    }
    msgs.push(line);
  }
  return [...new Set(msgs)].join('; ');
}

/** True when the runtime's error says the container does not exist (runc and crun wording). */
export function isNotExistError(message: string): boolean {
  return /container does not exist|container .* does not exist|No such file or directory|not found/.test(message);
}

const WRAPPER_MARK = '# hull runtime wrapper v2';

/**
 * The wrapper script hull runs instead of the runtime for commands that start processes (create, exec, update;
 * conmon's `-r`). It does two things:
 *  - stdio guard: a runtime hands its stdio to the container's process, and crun before 1.9 fchown()s that
 *    stdio to the process's user (for `--userns`, the mapped root). When conmon gives the runtime the host's
 *    /dev/null (stdin without -i; all three with a terminal), that changed the host's /dev/null owner. The
 *    wrapper swaps any of fd 0-2 that is the host's /dev/null for hull's private null device `nullDev` (a
 *    char 1:3 node under the root's run/bin/), so whatever a runtime version does to it stays hull's own.
 *  - pure v1 view (`pureV1`): crun < 1.9 refuses hybrid cgroup hosts; run it in a private mount namespace in
 *    which the cgroup2 mount at /sys/fs/cgroup/unified is detached (nothing changes outside that namespace).
 * `[ A -ef B ]` and `exec N<>` are shell builtins: the guard costs no extra process.
 */
function wrapperScript(
  runtime: string,
  nullDev: string | null,
  pureV1: { unshare: string; umount: string } | null,
): string {
  const lines = ['#!/bin/sh', WRAPPER_MARK];
  if (nullDev) {
    lines.push(
      "# never hand the runtime the host's /dev/null: runtimes may chown a process's stdio (crun < 1.9 does)",
      `[ /proc/self/fd/0 -ef /dev/null ] && exec 0<${nullDev}`,
      `[ /proc/self/fd/1 -ef /dev/null ] && exec 1>${nullDev}`,
      `[ /proc/self/fd/2 -ef /dev/null ] && exec 2>${nullDev}`,
    );
  }
  if (pureV1) {
    lines.push(
      '# crun < 1.9 refuses hybrid cgroup hosts: a private mount namespace without /sys/fs/cgroup/unified',
      `exec ${pureV1.unshare} --mount --propagation private /bin/sh -c '${pureV1.umount} -l /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"' ${runtime} "$@"`,
    );
  } else {
    lines.push(`exec ${runtime} "$@"`);
  }
  return `${lines.join('\n')}\n`;
}

/** True when `path` is a character device with the same device number as the host's /dev/null (1:3). */
function isNullDevice(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isCharacterDevice() && st.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/**
 * hull's private null device, `<dir>/null` (made with mknod, mode 666), or null when this root cannot hold
 * one that opens (a nodev filesystem, no mknod). Never the host's /dev/null.
 */
function ensurePrivateNull(dir: string): string | null {
  const path = join(dir, 'null');
  const usable = (): boolean => {
    try {
      closeSync(openSync(path, 'r+'));
      return true;
    } catch {
      return false;
    }
  };
  if (isNullDevice(path) && usable()) return path;
  const mknod = findExecutable('mknod');
  if (!mknod) return null;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const st = statSync('/dev/null');
  const r = spawnSync(mknod, ['-m', '666', tmp, 'c', String(Math.floor(st.rdev / 256)), String(st.rdev % 256)], {
    stdio: 'ignore',
  });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    return null;
  }
  renameSync(tmp, path);
  return usable() ? path : null;
}

/**
 * Write the runtime wrapper `<dir>/<name>` unless an identical one is there, and return its path; or return
 * the runtime itself when there is nothing to wrap. Throws HostSupportError when a needed part is missing.
 */
function ensureWrapper(dir: string, name: string, binary: string, version: string | null, pure: boolean): string {
  let pureV1: { unshare: string; umount: string } | null = null;
  if (pure) {
    const unshare = findExecutable('unshare');
    const umount = findExecutable('umount');
    if (!unshare || !umount)
      throw new HostSupportError(
        'crun needs unshare and umount (util-linux) on hosts with hybrid cgroups; install util-linux or use --runtime runc',
      );
    pureV1 = { unshare, umount };
  }
  const nullDev = ensurePrivateNull(dir);
  if (!nullDev && name === 'crun' && !(version && versionAtLeast(version, 1, 9)))
    throw new HostSupportError(
      `${version ? `crun ${version}` : 'this crun'} changes the owner of its stdio and hull cannot make its private null device in ${dir} (a nodev filesystem?); put the hull root on a filesystem that allows device nodes, upgrade crun to 1.9 or later, or use --runtime runc`,
    );
  if (!nullDev && !pureV1) return binary;
  const path = join(dir, name);
  const script = wrapperScript(binary, nullDev, pureV1);
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    /* not yet written */
  }
  if (current !== script) {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(path, script, 0o755);
    chmodSync(path, 0o755);
  }
  return path;
}

/** Options for {@link OciRuntime.spawnExec}. */
export interface ExecSpawnOptions {
  detach?: boolean;
  pidFile?: string;
  tty?: boolean;
  consoleSocket?: string;
  stdio?: StdioOptions;
}

/** The state directory of runtime `name` (runc, crun) under hull's root: `<hullRoot>/run/<name>`, one entry per container id. */
export function runtimeStateDir(hullRoot: string, name: string): string {
  return rootPaths(hullRoot).runtimeState(name);
}

/** One OCI runtime (runc or crun) with its state directory. */
export class OciRuntime {
  private constructor(
    /** runc or crun */
    readonly name: string,
    /** the real binary */
    readonly binary: string,
    /** what to execute for commands that set up cgroups, and what conmon runs as `-r` */
    readonly path: string,
    /** the state directory, passed as --root */
    readonly stateDir: string,
    /** the runtime's version, e.g. 1.8.1 (null when it could not be learned) */
    readonly version: string | null,
  ) {}

  /**
   * Open runtime `name` with its state under `<hullRoot>/run/<name>`. Throws HostSupportError
   * when the runtime is not installed or cannot run on this host.
   */
  static open(name: string, hullRoot: string): OciRuntime {
    if (name !== 'runc' && name !== 'crun') {
      throw new InvalidArgumentError(`unknown OCI runtime "${name}"; use runc or crun`);
    }
    const probe = probeRuntime(name);
    if (!probe.usable || !probe.path)
      throw new HostSupportError(`OCI runtime ${name} cannot be used: ${probe.reason ?? 'unknown reason'}`);
    const stateDir = runtimeStateDir(hullRoot, name);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const path = ensureWrapper(rootPaths(hullRoot).runBin, name, probe.path, probe.version, probe.needsPureV1View);
    return new OciRuntime(name, probe.path, path, stateDir, probe.version);
  }

  /** Global arguments (the state dir) to put before the command. */
  get globalArgs(): string[] {
    return [`--root=${this.stateDir}`];
  }

  /** Run one runtime command; cgroup-touching ones through the wrapper when there is one. */
  private async run(args: string[], o: { cgroups?: boolean; allowFailure?: boolean } = {}): Promise<RunResult> {
    const program = o.cgroups ? this.path : this.binary;
    const r = await runProgram(program, [...this.globalArgs, ...args], { allowFailure: true });
    if (r.status !== 0 && !o.allowFailure) {
      throw new HostCommandError(this.name, args, r.status, runtimeErrorMessage(r.stderr || r.stdout));
    }
    return r;
  }

  /**
   * `create --bundle B --pid-file P id`: set the container up; its process waits for start.
   * Run directly (hull itself creates through conmon), the container's stdio is /dev/null: the
   * runtime hands its own stdio to the container, so errors are taken from a JSON log instead.
   */
  async create(id: string, bundle: string, o: { pidFile?: string; consoleSocket?: string } = {}): Promise<void> {
    const args = ['create', '--bundle', bundle];
    if (o.pidFile) args.push('--pid-file', o.pidFile);
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    const log = join(this.stateDir, `.${id}.create.log`);
    try {
      const r = await runProgram(this.path, [...this.globalArgs, `--log=${log}`, '--log-format=json', ...args, id], {
        discardOutput: true,
        allowFailure: true,
      });
      if (r.status !== 0) {
        let text = '';
        try {
          text = readFileSync(log, 'utf8');
        } catch {
          /* no log written */
        }
        throw new HostCommandError(
          this.name,
          ['create', id],
          r.status,
          runtimeErrorMessage(text) || 'failed without a message',
        );
      }
    } finally {
      rmSync(log, { force: true });
    }
  }

  /** `start id`: let the created container's process exec the user's command. */
  async start(id: string): Promise<void> {
    await this.run(['start', id]);
  }

  /** `state id`, or null when the runtime does not know the container. */
  async state(id: string): Promise<OciState | null> {
    const r = await this.run(['state', id], { allowFailure: true });
    if (r.status !== 0) {
      const msg = runtimeErrorMessage(r.stderr);
      if (isNotExistError(msg)) return null;
      throw new HostCommandError(this.name, ['state', id], r.status, msg);
    }
    return JSON.parse(r.stdout) as OciState;
  }

  /** `kill [--all] id SIGNAL`. Signal as a name (SIGTERM, TERM) or number. */
  async kill(id: string, signal: string, all = false): Promise<void> {
    const sig = /^\d+$/.test(signal) ? signal : signal.toUpperCase().replace(/^SIG/, '');
    await this.run(['kill', ...(all ? ['--all'] : []), id, sig]);
  }

  /** True when the runtime keeps state for `id` (its directory under the state dir). */
  hasState(id: string): boolean {
    return existsSync(join(this.stateDir, id));
  }

  /** `delete [--force] id`. Returns false when the container did not exist. */
  async delete(id: string, force = false): Promise<boolean> {
    if (!this.hasState(id)) return false;
    // delete removes the cgroups recorded at create; crun does not need the pure v1 view for it
    const r = await this.run(['delete', ...(force ? ['--force'] : []), id], { allowFailure: true });
    if (r.status === 0) return true;
    const msg = runtimeErrorMessage(r.stderr);
    if (isNotExistError(msg)) return false;
    throw new HostCommandError(this.name, ['delete', id], r.status, msg);
  }

  /** Freeze all processes of the container (cgroup freezer). */
  async pause(id: string): Promise<void> {
    await this.run(['pause', id]);
  }

  /** Thaw a paused container. */
  async resume(id: string): Promise<void> {
    await this.run(['resume', id]);
  }

  /** Change resource limits of a live container (flags common to runc 1.1 and crun). */
  async update(id: string, r: RuntimeResourceUpdate): Promise<void> {
    const args = ['update'];
    const add = (flag: string, v: number | string | undefined): void => {
      if (v !== undefined) args.push(`--${flag}=${v}`);
    };
    add('memory', r.memory);
    add('memory-swap', r.memorySwap);
    add('memory-reservation', r.memoryReservation);
    add('cpu-quota', r.cpuQuota);
    add('cpu-period', r.cpuPeriod);
    add('cpu-share', r.cpuShares);
    add('cpuset-cpus', r.cpusetCpus);
    add('cpuset-mems', r.cpusetMems);
    add('pids-limit', r.pidsLimit);
    add('blkio-weight', r.blkioWeight);
    if (args.length === 1) return;
    await this.run([...args, id], { cgroups: true });
  }

  /** Pids of the container's processes (`ps --format json`). */
  async ps(id: string): Promise<number[]> {
    const r = await this.run(['ps', '--format', 'json', id]);
    const pids = JSON.parse(r.stdout || '[]') as number[] | null;
    return pids ?? [];
  }

  /** All containers in this runtime's state dir. */
  async list(): Promise<OciState[]> {
    const r = await this.run(['list', '--format', 'json']);
    const list = JSON.parse(r.stdout.trim() || '[]') as OciState[] | null;
    return list ?? [];
  }

  /** Arguments for `exec` with a process.json (used directly or by conmon). */
  execArgs(id: string, processFile: string, o: ExecSpawnOptions = {}): string[] {
    const args = ['exec', '--process', processFile];
    if (o.detach) args.push('--detach');
    if (o.pidFile) args.push('--pid-file', o.pidFile);
    if (o.tty) args.push('--tty');
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    return [...args, id];
  }

  /**
   * Start `exec --process FILE id` and return the child, stdio as given (default: pipes).
   * The caller streams the I/O and waits for the exit; the exit status is the process's
   * (or 255 and a message on stderr when the runtime itself failed).
   */
  spawnExec(id: string, processFile: string, o: ExecSpawnOptions = {}): ChildProcess {
    return spawn(this.path, [...this.globalArgs, ...this.execArgs(id, processFile, o)], {
      stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'],
    });
  }
}
