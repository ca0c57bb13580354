/**
 * The VM monitor: hull's host-side supervisor of one VM, what conmon is to a container. It is started
 * detached by the driver's create (its own process, so that the VM outlives the hull command that made it)
 * and it:
 *   - owns QEMU (its child, started through `setpriv --pdeathsig KILL` so that QEMU cannot outlive it),
 *   - speaks QMP to QEMU and hull's agent protocol to the guest (both sockets are listened on here and
 *     QEMU connects: no polling for sockets to appear),
 *   - writes the main process's output to the k8s-file log, its exit code to the exit file (plus a reason
 *     when QEMU ended without one: kernel panic, QEMU killed from outside; and an `oom` marker, as conmon's,
 *     when the guest kernel's OOM killer killed a process of the instance),
 *   - reads the serial console as it comes (console-scan.ts): a kernel panic or an OOM kill is recognised
 *     wherever it shows, not looked for in a tail afterwards,
 *   - serves hull's CLI on ctl.sock: a JSON request line, a JSON answer line, and for exec/attach the
 *     agent protocol's frames afterwards,
 *   - runs the instance's exit command when the VM ends, and removes its sockets.
 * Its settings are <dir>/vm.json (MonitorConfig). It reports "ok <qemu pid>" or "error <message>" on its
 * stdout once QEMU is started and then closes it, so the driver's create knows the outcome.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ConsoleScanner, describeOomKills } from './console-scan.js';
import { LogFileWriter } from './logfile.js';
import { virtiofsdSocketPath, type MonitorConfig } from './machine.js';
import type { RestorePlan } from './template.js';
import {
  ALL_SESSIONS,
  QUERY_SESSION,
  decodeStatus,
  encodeData,
  encodeFrame,
  encodeAttach,
  encodeSpec,
  FrameDecoder,
  T,
  u32,
  type Frame,
  type ProcessSpec,
} from './protocol.js';
import { QmpClient } from './qmp.js';
import { GuestAgentClient, guestAddresses, type GuestInterface } from './guest-agent.js';
import { GUEST_AGENT_DEVICE } from './fullos.js';
import { instancePaths, VM_SOCKETS, type InstancePaths } from '../common/paths.js';

export const SOCKETS = VM_SOCKETS;

/** Requests on ctl.sock. */
export type CtlRequest =
  | { op: 'start' }
  | { op: 'status' }
  | { op: 'kill'; signal: number; all?: boolean }
  | { op: 'exec'; spec: ProcessSpec }
  | { op: 'attach'; rows?: number; cols?: number }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'balloon'; bytes: number }
  | { op: 'stats' }
  | { op: 'shutdown' }
  | { op: 'console' }
  /** a disk VM: one command to the QEMU guest agent (waits for the agent within the boot window) */
  | { op: 'guest'; command: string; args?: Record<string, unknown>; timeoutMs?: number; noAnswer?: boolean }
  /** switch QEMU trace events on or off (QEMU's log backend writes them to qemu.log): device accesses, for benchmarks */
  | { op: 'trace'; events: string[]; enable: boolean };

export interface CtlAnswer {
  ok: boolean;
  error?: string;
  /** hull error class to raise: 'not-found' (127), 'not-executable' (126), 'state', 'boot' */
  kind?: string;
  [k: string]: unknown;
}

/** Figures of `stats`. */
export interface VmStats {
  qemuPid: number;
  /** QEMU's CPU time (all vCPU and I/O threads) */
  cpuNs: number;
  /** host RSS of QEMU */
  qemuRss: number;
  /** balloon's view: guest RAM now (after ballooning) */
  actual: number;
  /** what the balloon was last asked for (the limit hull set), or the boot RAM */
  target: number;
  /** guest's own figures (virtio-balloon stats), when it reported them */
  guest?: { total?: number; free?: number; available?: number };
  blkRead: number;
  blkWrite: number;
  /** processes in the guest (the agent's count), when it answered */
  pids?: number;
  /** block requests (QMP's rd_operations/wr_operations): with the byte counts, requests per MiB */
  blkReadOps: number;
  blkWriteOps: number;
  /** bytes the guest received and sent: its taps' counters (QEMU runs in the namespace that holds them), swapped */
  netRx?: number;
  netTx?: number;
}

type Phase = 'booting' | 'ready' | 'running' | 'paused' | 'exited';

const CLK_TCK = 100;

function readTail(path: string, lines: number): string {
  try {
    const st = statSync(path);
    const len = Math.min(st.size, 16384);
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, st.size - len);
    closeSync(fd);
    // the console has terminal escapes from the firmware; keep printable text
    const text = buf
      .toString('utf8')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '')
      .replace(/\r/g, '');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .slice(-lines)
      .join('\n');
  } catch {
    return '';
  }
}

/** The guest console's last lines, for error messages. */
export function consoleTail(path: string, lines = 12): string {
  return readTail(path, lines);
}

function procCpuNs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * (1e9 / CLK_TCK);
  } catch {
    return 0;
  }
}

function procRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

class NoGuestAgent extends Error {}

class Monitor {
  private qemu: ChildProcess | null = null;
  private qmp: QmpClient | null = null;
  private agent: Socket | null = null;
  private readonly servers: Server[] = [];
  private phase: Phase = 'booting';
  private kernelRelease = '';
  /** null with --log-driver none */
  private log: LogFileWriter | null;
  private readonly readyWaiters: ((err?: string) => void)[] = [];
  private startReply: ((a: CtlAnswer) => void) | null = null;
  private mainPid = 0;
  private readonly attached = new Set<Socket>();
  private readonly pendingStdin: Buffer[] = [];
  private readonly execs = new Map<number, Socket>();
  private nextSession = 1;
  private exited = false;
  private qmpReady: Promise<QmpClient>;
  private resolveQmp!: (q: QmpClient) => void;
  private bootTimer: NodeJS.Timeout | null = null;
  private hardKillTimer: NodeJS.Timeout | null = null;
  private balloonTarget: number;
  private mainSize: { rows: number; cols: number } | null = null;
  private readonly countWaiters: ((n: number) => void)[] = [];
  /** QEMU's end of the serial console, the console log, and the `hull console` clients */
  private serial: Socket | null = null;
  private consoleFd = -1;
  private readonly consoleClients = new Set<Socket>();
  private readonly scanner = new ConsoleScanner();
  /** resolves when QEMU's end of the console has closed (all it wrote has been read) */
  private serialEnded: Promise<void> | null = null;
  /** a disk VM's QEMU guest agent: the channel, whether the guest has the port open, who waits for it */
  private ga: GuestAgentClient | null = null;
  private gaOpen = false;
  private gaEverOpen = false;
  private readonly gaWaiters: (() => void)[] = [];
  private gaTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dir: string,
    private readonly cfg: MonitorConfig,
  ) {
    const lc = cfg.log;
    this.log =
      lc?.driver === 'none'
        ? null
        : new LogFileWriter(cfg.logPath, {
            format: lc?.driver === 'json-file' ? 'json-file' : 'k8s-file',
            ...(lc?.maxSize ? { maxSize: lc.maxSize } : {}),
            ...(lc?.maxFile ? { maxFile: lc.maxFile } : {}),
          });
    this.balloonTarget = cfg.memory;
    this.qmpReady = new Promise((r) => (this.resolveQmp = r));
  }

  private get files(): InstancePaths {
    return instancePaths(this.dir);
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  private listen(name: string, onConn: (s: Socket) => void): Promise<void> {
    rmSync(this.path(name), { force: true });
    const srv = createServer(onConn);
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      // relative to our cwd (the instance dir): a socket path must fit in 108 bytes
      srv.listen(name, () => resolve());
    });
  }

  async run(): Promise<void> {
    await this.listen(SOCKETS.qmp, (s) => {
      const q = new QmpClient(s);
      q.handshake().then(
        () => {
          this.qmp = q;
          this.resolveQmp(q);
          // balloon statistics are pulled by the guest driver every N seconds once asked for
          if (this.cfg.deviceModel === 'virtio') {
            q.execute('qom-set', {
              path: '/machine/peripheral/balloon0',
              property: 'guest-stats-polling-interval',
              value: 2,
            }).catch(() => undefined);
          }
        },
        () => undefined,
      );
      q.onEvent((e) => {
        if (e.event === 'VSERPORT_CHANGE' && e.data?.id === GUEST_AGENT_DEVICE) this.guestPort(e.data.open === true);
        if (e.event === 'STOP' && this.phase === 'running') this.phase = 'paused';
        if (e.event === 'RESUME' && this.phase === 'paused') this.phase = 'running';
      });
    });
    if (this.cfg.mode === 'agent') await this.listen(SOCKETS.agent, (s) => this.onAgent(s));
    if (this.cfg.guestAgent) await this.listen(SOCKETS.qga, (s) => this.onGuestAgent(s));
    this.consoleFd = openSync(this.cfg.consolePath, 'a', 0o640);
    await this.listen(SOCKETS.console, (s) => this.onSerial(s));
    await this.listen(SOCKETS.ctl, (s) => this.onCtl(s));

    await this.startVirtiofsd();
    const restore = this.cfg.restore;
    if (restore) {
      this.restoring = true;
      try {
        await this.spawnQemu(restore.argv);
        void this.restoreTemplate(restore);
      } catch (e) {
        this.restoreFailed((e as Error).message);
      }
    } else {
      await this.spawnQemu(this.cfg.argv);
    }
    // the agent has this long to say READY once start asks for the main process
    if (this.cfg.mode === 'agent') this.bootTimer = setTimeout(() => this.bootTimedOut(), this.cfg.bootTimeoutMs);
  }

  private async spawnQemu(qemuArgv: string[]): Promise<void> {
    // a restore reads the template's state from fd 3 (-incoming fd:3): QEMU loads it as it starts, no pipe
    const state = this.restoring && this.cfg.restore ? openSync(this.cfg.restore.state, 'r') : null;
    const out = openSync(this.files.qemuLog, this.restoring ? 'w' : 'a', 0o640);
    const argv = ['--pdeathsig', 'KILL', ...withoutTransparentHugePages(), this.cfg.qemu, ...qemuArgv];
    const stdio: ('ignore' | number)[] = ['ignore', out, out, ...(state !== null ? [state] : [])];
    // on hull networks QEMU runs in the instance's network namespace, where its taps are; nsenter execs
    // setpriv, which execs QEMU: still one process, our child, dying with us
    const qemu = this.cfg.netns
      ? spawn('nsenter', [`--net=${this.cfg.netns}`, '--', 'setpriv', ...argv], { cwd: this.dir, stdio })
      : spawn('setpriv', argv, { cwd: this.dir, stdio });
    closeSync(out);
    if (state !== null) closeSync(state);
    this.qemu = qemu;
    await new Promise<void>((resolve, reject) => {
      qemu.once('spawn', resolve);
      qemu.once('error', reject);
    });
    writeFileSync(this.files.qemuPid, String(qemu.pid));
    qemu.on('exit', (code, signal) => {
      if (qemu !== this.qemu) return; // a failed restore's QEMU, replaced by a cold boot
      if (this.restoring) {
        this.restoreFailed(
          `QEMU ended (${signal ?? `status ${code}`}): ${readTail(this.files.qemuLog, 2).replace(/\n/g, '; ')}`,
        );
        return;
      }
      this.onQemuExit(code, signal);
    });
  }

  /* ---- templates (template.ts) ---- */

  /** restoring a template: a failure now means a cold boot, not the end */
  private restoring = false;
  /** said to `start` (and from there to the user) when the restore failed */
  private warning: string | null = null;
  /** the 'A' frame, waiting for the agent's connection */
  private attachPending: Buffer | null = null;
  private restoreMs = 0;

  /** Feed QEMU the template's state, run it, and give the guest the instance ('A'). */
  private async restoreTemplate(plan: RestorePlan): Promise<void> {
    const t0 = Date.now();
    const qemu = this.qemu;
    try {
      const q = await this.qmpReady;
      for (;;) {
        const st = await q.execute<{ status: string }>('query-status');
        if (st.status !== 'inmigrate') break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const mig = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (mig.status !== 'completed')
        throw new Error(mig['error-desc'] ?? `migration ${mig.status ?? 'did not complete'}`);
      await q.execute('cont');
    } catch (e) {
      if (qemu === this.qemu) this.restoreFailed((e as Error).message);
      return;
    }
    if (qemu !== this.qemu || !this.restoring) return;
    this.restoring = false;
    this.restoreMs = Date.now() - t0;
    const now = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const frame = encodeFrame(
      T.ATTACH,
      0,
      encodeAttach({
        entropy: randomBytes(64),
        timeNs: now,
        root: plan.root,
        readOnly: plan.readOnly,
        macs: plan.macs,
      }),
    );
    if (this.agent) this.agent.write(frame);
    else this.attachPending = frame;
    process.stderr.write(`restored VM template ${plan.template.slice(0, 12)} in ${this.restoreMs} ms\n`);
  }

  /** The restore failed: the template's QEMU goes, a cold boot of the instance's own command line takes its place. */
  private restoreFailed(reason: string): void {
    if (!this.restoring) return;
    this.restoring = false;
    this.warning = `the VM template could not be restored (${reason.trim() || 'unknown error'}); booted cold instead`;
    process.stderr.write(`${this.warning}\n`);
    // a template that does not restore is made again by the next start (template.ts)
    const tdir = this.cfg.restore ? dirname(this.cfg.restore.state) : '';
    if (/\/[0-9a-f]{64}$/.test(tdir)) rmSync(tdir, { recursive: true, force: true });
    const old = this.qemu;
    this.qemu = null;
    this.qmp?.close();
    this.qmp = null;
    this.qmpReady = new Promise((r) => (this.resolveQmp = r));
    this.agent?.destroy();
    this.agent = null;
    this.attachPending = null;
    this.serial?.destroy();
    this.serial = null;
    this.serialEnded = null;
    const gone =
      old && old.exitCode === null && old.signalCode === null
        ? new Promise<void>((r) => {
            old.once('exit', () => r());
            old.kill('SIGKILL');
          })
        : Promise.resolve();
    void gone
      .then(() => {
        if (this.exited) return;
        if (this.bootTimer) clearTimeout(this.bootTimer);
        this.bootTimer = setTimeout(() => this.bootTimedOut(), this.cfg.bootTimeoutMs);
        return this.spawnQemu(this.cfg.argv);
      })
      .catch((e: Error) => this.fail(`QEMU could not be started: ${e.message}`));
  }

  /* ---- volumes ---- */

  private readonly virtiofsds: ChildProcess[] = [];
  private volumeFailure: string | null = null;

  /**
   * One virtiofsd per bind volume, our child through `setpriv --pdeathsig KILL` as QEMU is (its own
   * sandbox: mount, pid and net namespaces, pivot_root into the source). A read-only volume is served from
   * a read-only bind mount of the source, made in a mount namespace of its own: the host refuses writes,
   * not only the guest. QEMU connects to the sockets, so they must exist before it starts.
   */
  private async startVirtiofsd(): Promise<void> {
    const volumes = this.cfg.volumes ?? [];
    if (volumes.length === 0) return;
    const log = openSync(this.files.virtiofsdLog, 'w', 0o640);
    try {
      for (const v of volumes) {
        rmSync(this.path(v.socket), { force: true });
        // unique on the host (virtiofsd's pid file is named after it), absolute when it fits in sun_path
        const daemon = [
          this.cfg.virtiofsd!,
          `--socket-path=${virtiofsdSocketPath(this.dir, v.socket)}`,
          '-o',
          `source=${v.source}`,
          '-o',
          'cache=auto',
        ];
        const argv = v.readonly
          ? [
              '--pdeathsig',
              'KILL',
              'unshare',
              '--mount',
              '--propagation',
              'private',
              '--',
              'sh',
              '-c',
              'mount --bind -o ro "$0" "$0" && exec "$@"',
              v.source,
              ...daemon,
            ]
          : ['--pdeathsig', 'KILL', ...daemon];
        const d = spawn('setpriv', argv, { cwd: this.dir, stdio: ['ignore', log, log] });
        this.virtiofsds.push(d);
        // without its virtiofsd the guest's file accesses on the volume would hang: end the VM, saying why
        // (it also ends, normally, when QEMU hangs up: only a QEMU still running a second later counts)
        d.on('exit', (code, signal) =>
          setTimeout(() => {
            const q = this.qemu;
            if (this.finished || this.exited || !q || q.exitCode !== null || q.signalCode !== null) return;
            const why = readTail(this.files.virtiofsdLog, 2).replace(/\n/g, '; ');
            this.volumeFailure = `virtiofsd of the volume ${v.source} ended (${signal ?? `status ${code}`})${why ? `: ${why}` : ''}`;
            q.kill('SIGKILL');
          }, 1000).unref(),
        );
        await new Promise<void>((resolve, reject) => {
          d.once('spawn', resolve);
          d.once('error', reject);
        });
        const deadline = Date.now() + 10_000;
        while (!existsSync(this.path(v.socket))) {
          if (d.exitCode !== null || d.signalCode !== null || Date.now() > deadline) {
            const why = readTail(this.files.virtiofsdLog, 3).replace(/\n/g, '; ');
            throw new Error(`virtiofsd for the volume ${v.source} did not start${why ? `: ${why}` : ''}`);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    } finally {
      closeSync(log);
    }
  }

  /* ---- the QEMU guest agent (disk VMs) ---- */

  private onGuestAgent(s: Socket): void {
    if (this.ga) {
      s.destroy();
      return;
    }
    this.ga = new GuestAgentClient(s);
  }

  /** The guest opened or closed the agent's port (qemu-guest-agent started or stopped). */
  private guestPort(open: boolean): void {
    this.gaOpen = open;
    this.ga?.reset();
    if (!open) {
      if (this.gaTimer) clearInterval(this.gaTimer);
      this.gaTimer = null;
      return;
    }
    this.gaEverOpen = true;
    for (const w of this.gaWaiters.splice(0)) w();
    // the guest's addresses for inspect, now and every few seconds (DHCP, SLAAC come later)
    const refresh = (): void => {
      if (!this.gaOpen || this.exited || !this.ga) return;
      this.ga
        .execute<GuestInterface[]>('guest-network-get-interfaces', undefined, { timeoutMs: 5000 })
        .then((ifaces) => {
          const tmp = this.path('.guest-net.tmp');
          writeFileSync(tmp, JSON.stringify({ at: new Date().toISOString(), addresses: guestAddresses(ifaces) }));
          renameSync(tmp, this.files.guestNet);
        })
        .catch(() => undefined);
    };
    refresh();
    if (!this.gaTimer) {
      this.gaTimer = setInterval(refresh, 10_000);
      this.gaTimer.unref();
    }
  }

  /**
   * The guest agent, when the guest has its port open; as Incus does, no waiting through a boot (the caller
   * retries), only a moment's when the agent was there before (restarting).
   */
  private async guestAgent(): Promise<GuestAgentClient> {
    if (!this.cfg.guestAgent || !this.ga) throw new NoGuestAgent('it has no guest agent channel');
    if (this.gaOpen) return this.ga;
    if (this.gaEverOpen && !this.exited) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 3000);
        this.gaWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (this.gaOpen) return this.ga;
    }
    throw new NoGuestAgent(
      this.gaEverOpen
        ? 'its QEMU guest agent stopped answering (qemu-guest-agent in the guest is not running)'
        : "neither hull's agent nor the QEMU guest agent answers in it (still booting, or no qemu-guest-agent in its image; hull console reaches it)",
    );
  }

  private async guestRequest(
    s: Socket,
    req: { command: string; args?: Record<string, unknown>; timeoutMs?: number; noAnswer?: boolean },
  ): Promise<void> {
    if (this.exited) return this.answer(s, { ok: false, error: 'it is not running', kind: 'state' });
    let ga: GuestAgentClient;
    try {
      ga = await this.guestAgent();
    } catch (e) {
      return this.answer(s, { ok: false, error: (e as Error).message, kind: 'no-guest-agent' });
    }
    try {
      const r = await ga.execute(req.command, req.args, {
        ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}),
        ...(req.noAnswer ? { noAnswer: true } : {}),
      });
      return this.answer(s, { ok: true, return: r });
    } catch (e) {
      return this.answer(s, { ok: false, error: (e as Error).message, kind: 'guest' });
    }
  }

  /**
   * Ask the guest OS to power off: its guest agent's guest-shutdown (no answer is success; qemu-ga answers only
   * when its `shutdown -P +0` failed, as it does in a guest without D-Bus, where systemd's logind cannot schedule
   * it), then `poweroff` run by the agent (systemctl talks to systemd directly), else the ACPI power button.
   */
  private async powerdown(): Promise<void> {
    const say = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    if (this.gaOpen && this.ga) {
      const ga = this.ga;
      const answered = await ga.execute('guest-shutdown', { mode: 'powerdown' }, { timeoutMs: 5000 }).then(
        () => 'answered',
        (e: Error) => (/did not answer/.test(e.message) ? null : e.message),
      );
      if (answered === null) {
        say('stop: the guest agent took guest-shutdown');
        return;
      }
      say(`stop: guest-shutdown failed (${answered}); running poweroff through the guest agent`);
      const ran = await ga
        .execute('guest-exec', { path: 'poweroff', arg: [], 'capture-output': false }, { timeoutMs: 5000 })
        .then(
          () => true,
          (e: Error) => {
            say(`stop: poweroff through the guest agent failed (${e.message})`);
            return false;
          },
        );
      if (ran) return;
    }
    say('stop: pressing the ACPI power button (system_powerdown)');
    await (await this.qmpReady).execute('system_powerdown');
  }

  /* ---- serial console ---- */

  private onSerial(s: Socket): void {
    if (this.serial) {
      s.destroy();
      return;
    }
    this.serial = s;
    this.serialEnded = new Promise((resolve) =>
      s.once('close', () => {
        this.scanner.end();
        resolve();
      }),
    );
    s.on('data', (b: Buffer) => {
      this.scanner.push(b);
      try {
        writeSync(this.consoleFd, b);
      } catch {
        /* disk full: the console is best effort */
      }
      // a disk-image VM has no agent: its console output is its log
      if (this.cfg.mode === 'disk' && !this.exited) this.log?.write('stdout', b);
      for (const c of this.consoleClients) c.write(b);
    });
    s.on('error', () => undefined);
  }

  private consoleAttach(s: Socket, rest: Buffer): void {
    this.consoleClients.add(s);
    this.answer(s, { ok: true }, false);
    const input = (b: Buffer): void => {
      this.serial?.write(b);
    };
    s.on('data', input);
    s.on('close', () => this.consoleClients.delete(s));
    if (rest.length) input(rest);
  }

  /* ---- agent ---- */

  private onAgent(s: Socket): void {
    if (this.agent) {
      s.destroy();
      return;
    }
    this.agent = s;
    if (this.attachPending) {
      s.write(this.attachPending);
      this.attachPending = null;
    }
    const dec = new FrameDecoder();
    s.on('data', (b: Buffer) => {
      let frames: Frame[];
      try {
        frames = dec.push(b);
      } catch (e) {
        this.fail(`the guest agent sent a malformed frame (${(e as Error).message})`);
        return;
      }
      for (const f of frames) this.onFrame(f);
    });
    s.on('error', () => undefined);
  }

  private toAgent(frames: Buffer | Buffer[]): void {
    const list = Array.isArray(frames) ? frames : [frames];
    for (const f of list) this.agent?.write(f);
  }

  private onFrame(f: Frame): void {
    if (f.session === 0) {
      switch (f.type) {
        case T.READY:
          this.kernelRelease = f.payload.toString();
          this.phase = 'ready';
          if (this.bootTimer) clearTimeout(this.bootTimer);
          this.bootTimer = null;
          for (const w of this.readyWaiters.splice(0)) w();
          return;
        case T.STARTED:
          this.mainPid = f.payload.readUInt32LE(0);
          this.phase = 'running';
          for (const b of this.pendingStdin.splice(0)) this.toAgent(encodeData(T.STDIN, 0, b));
          this.startReply?.({
            ok: true,
            pid: this.mainPid,
            kernel: this.kernelRelease,
            ...(this.warning ? { warning: this.warning } : {}),
          });
          this.startReply = null;
          return;
        case T.FAILED: {
          const st = decodeStatus(f.payload);
          this.startReply?.({
            ok: false,
            error: st.message,
            kind: st.code === 127 ? 'not-found' : st.code === 126 ? 'not-executable' : 'setup',
            code: st.code,
          });
          this.startReply = null;
          return;
        }
        case T.STDOUT:
        case T.STDERR:
          this.log?.write(f.type === T.STDOUT ? 'stdout' : 'stderr', f.payload);
          for (const c of this.attached) c.write(encodeFrame(f.type, 0, f.payload));
          return;
        case T.EXITED:
          this.mainProcessEnded(f.payload);
          return;
      }
      return;
    }
    if (f.session === QUERY_SESSION && f.type === T.COUNT && f.payload.length >= 4) {
      const n = f.payload.readUInt32LE(0);
      for (const w of this.countWaiters.splice(0)) w(n);
      return;
    }
    const client = this.execs.get(f.session);
    if (!client) return;
    client.write(encodeFrame(f.type, f.session, f.payload));
    if (f.type === T.EXITED || f.type === T.FAILED) {
      this.execs.delete(f.session);
      client.end();
    }
  }

  /* ---- the end ---- */

  /**
   * The agent reported the main process's end: its status, and (after it) the guest's OOM kills since boot
   * (/proc/vmstat oom_kill; an agent without it sends the status only, and the console decides). Any OOM
   * kill in the guest counts, as any in a container's cgroup does for conmon: the guest is the instance.
   */
  private mainProcessEnded(payload: Buffer): void {
    const code = payload.length >= 4 ? payload.readInt32LE(0) : 255;
    const kills = payload.length >= 8 ? payload.readUInt32LE(4) : this.scanner.oomKillCount;
    if (kills === 0) {
      this.mainExited(code, undefined);
      return;
    }
    // name the victims: the console line may come a moment after the agent's report
    void this.scanner.waitOomKills(kills, 1000).then(() => {
      const named =
        this.scanner.oomKills.length > 0
          ? describeOomKills(this.scanner.oomKills, Math.max(kills, this.scanner.oomKillCount))
          : `${kills} ${kills === 1 ? 'process' : 'processes'}`;
      const mib = Math.round(this.cfg.memory / (1024 * 1024));
      this.mainExited(
        code,
        `OOM killed: the guest ran out of memory (${mib} MiB) and its kernel killed ${named}; give the VM more with --memory`,
        true,
      );
    });
  }

  /** The main process ended (or the VM did): record it, stop QEMU, run the exit command. */
  private mainExited(code: number, reason: string | undefined, oomKilled = false): void {
    if (this.exited) return;
    this.exited = true;
    this.phase = 'exited';
    if (this.hardKillTimer) clearTimeout(this.hardKillTimer);
    for (const w of this.gaWaiters.splice(0)) w();
    try {
      this.log?.close();
    } catch {
      /* already closed */
    }
    if (reason) writeFileSync(this.cfg.reasonFile, reason);
    if (oomKilled) writeFileSync(join(dirname(this.cfg.exitFile), 'oom'), '');
    // written last, and whole (temp file outside the watched dir, then rename): waiters watch for it and
    // must never read it empty
    const tmp = this.path('.exit.tmp');
    writeFileSync(tmp, String(code));
    renameSync(tmp, this.cfg.exitFile);
    for (const c of this.attached) c.write(encodeFrame(T.EXITED, 0, u32(code)), () => c.end());
    for (const c of this.execs.values()) c.destroy();
    this.stopQemu();
  }

  private stopQemu(): void {
    const q = this.qemu;
    if (!q || q.exitCode !== null || q.signalCode !== null) {
      this.finish();
      return;
    }
    // the agent synced the disks before reporting the exit: quitting QEMU now loses nothing
    this.qmp?.execute('quit').catch(() => undefined);
    setTimeout(() => q.kill('SIGKILL'), this.qmp ? 3000 : 0).unref();
  }

  private onQemuExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) {
      this.finish();
      return;
    }
    // QEMU's last console output (a panic message) may still be unread on the socket: read it to its end
    // first (bounded: a socket that does not close within a second has nothing more to say)
    const drained = this.serialEnded
      ? Promise.race([this.serialEnded, new Promise((r) => setTimeout(r, 1000))])
      : Promise.resolve();
    void drained.then(() => {
      if (!this.exited) this.qemuEnded(code, signal);
      this.finish();
    });
  }

  /** QEMU ended before the main process's exit was reported: say why, from what is known. */
  private qemuEnded(code: number | null, signal: NodeJS.Signals | null): void {
    const panic = this.scanner.panic;
    if (this.cfg.mode === 'disk' && code === 0 && !panic) {
      // the guest OS powered off: that is its process ending normally
      this.mainExited(0, undefined);
      return;
    }
    let reason: string;
    let status = 255;
    if (this.volumeFailure) {
      reason = this.volumeFailure;
    } else if (signal) {
      reason = `QEMU was killed by ${signal} from outside hull`;
      status =
        128 +
        ((
          { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGQUIT: 3, SIGABRT: 6, SIGSEGV: 11 } as Record<
            string,
            number
          >
        )[signal] ?? 0);
      if (status === 128) status = 255;
    } else if (panic) {
      reason = `guest kernel panic: ${panic}`;
    } else {
      // the agent says on the console why it gave up (no channel, no root disk); else QEMU's own words
      const console = readTail(this.cfg.consolePath, 40);
      const agent = console
        .split('\n')
        .filter((l) => l.includes('hull-agent:'))
        .slice(-2)
        .join('; ');
      const err =
        agent || readTail(this.files.qemuLog, 3).replace(/\n/g, '; ') || console.split('\n').slice(-3).join('; ');
      reason = `QEMU exited (status ${code}) before the instance's process ended${err ? `: ${err}` : ''}`;
    }
    this.failStart(reason);
    this.mainExited(status, reason);
  }

  private finished = false;

  private finish(): void {
    if (this.finished) return;
    const q = this.qemu;
    if (q && q.exitCode === null && q.signalCode === null) return; // wait for QEMU's exit event
    this.finished = true;
    this.qmp?.close();
    this.ga?.close();
    if (this.gaTimer) clearInterval(this.gaTimer);
    rmSync(this.files.guestNet, { force: true });
    for (const c of this.consoleClients) c.end();
    for (const s of this.servers) s.close();
    for (const name of Object.values(SOCKETS)) rmSync(this.path(name), { force: true });
    // virtiofsd ends when QEMU hangs up; one that has not yet goes now
    for (const d of this.virtiofsds) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    for (const v of this.cfg.volumes ?? []) rmSync(this.path(v.socket), { force: true });
    if (this.cfg.exitCommand.length > 0 && this.exited) {
      const [cmd, ...args] = this.cfg.exitCommand;
      const child = spawn(cmd!, args, { detached: true, stdio: 'ignore' });
      child.on('error', () => undefined);
      child.unref();
    }
    // let pending answers go out
    setTimeout(() => process.exit(0), 50).unref();
  }

  private failStart(message: string): void {
    for (const w of this.readyWaiters.splice(0)) w(message);
    this.startReply?.({ ok: false, error: message, kind: 'boot' });
    this.startReply = null;
  }

  private bootTimedOut(): void {
    this.bootTimer = null;
    if (this.phase !== 'booting') return;
    const tail = consoleTail(this.cfg.consolePath);
    const msg = `the guest agent did not answer within ${Math.round(this.cfg.bootTimeoutMs / 1000)} s of boot (kernel ${this.cfg.kernel}, ${this.cfg.accel})${tail ? `; console:\n${tail}` : '; the console is empty'}`;
    this.fail(msg);
  }

  /** A fatal problem before the main process ran: tell a waiting start, stop everything. */
  private fail(message: string): void {
    this.failStart(message);
    this.mainExited(255, message);
  }

  /* ---- ctl.sock ---- */

  private onCtl(s: Socket): void {
    let buf = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      s.off('data', onData);
      const rest = buf.subarray(nl + 1);
      let req: CtlRequest;
      try {
        req = JSON.parse(buf.subarray(0, nl).toString()) as CtlRequest;
      } catch {
        s.end(JSON.stringify({ ok: false, error: 'malformed request' }) + '\n');
        return;
      }
      this.request(s, req, rest).catch((e: Error) => this.answer(s, { ok: false, error: e.message }, true));
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  }

  private answer(s: Socket, a: CtlAnswer, end = true): void {
    if (s.destroyed) return;
    const line = JSON.stringify(a) + '\n';
    if (end) s.end(line);
    else s.write(line);
  }

  private waitReady(): Promise<void> {
    if (this.phase !== 'booting') return Promise.resolve();
    if (this.exited) return Promise.reject(new Error('the VM has stopped'));
    return new Promise((resolve, reject) =>
      this.readyWaiters.push((err) => (err ? reject(new Error(err)) : resolve())),
    );
  }

  private async request(s: Socket, req: CtlRequest, rest: Buffer): Promise<void> {
    switch (req.op) {
      case 'status':
        return this.answer(s, {
          ok: true,
          phase: this.phase,
          pid: this.mainPid,
          qemuPid: this.qemu?.pid ?? 0,
          kernel: this.kernelRelease,
          // how it started: restored from a template (and how long the restore took) or booted
          template: this.cfg.restore && !this.warning ? this.cfg.restore.template : null,
          restoreMs: this.restoreMs,
          ...(this.cfg.guestAgent ? { guestAgent: this.gaOpen } : {}),
        });
      case 'start': {
        if (this.phase === 'running' || this.phase === 'paused') return this.answer(s, { ok: true, pid: this.mainPid });
        if (this.exited) return this.answer(s, { ok: false, error: 'the VM has already stopped', kind: 'state' });
        if (this.cfg.mode === 'disk') {
          // a full OS runs from power-on: QEMU is its process
          this.phase = 'running';
          this.mainPid = this.qemu?.pid ?? 0;
          return this.answer(s, { ok: true, pid: this.mainPid });
        }
        try {
          await this.waitReady();
        } catch (e) {
          return this.answer(s, { ok: false, error: (e as Error).message, kind: 'boot' });
        }
        const reply = new Promise<CtlAnswer>((r) => (this.startReply = r));
        this.toAgent(encodeFrame(T.START, 0, encodeSpec({ ...this.cfg.main, ...(this.mainSize ?? {}) })));
        const a = await reply;
        this.answer(s, a);
        if (!a.ok && a.kind !== 'boot') this.mainExited(typeof a.code === 'number' ? a.code : 255, a.error);
        return;
      }
      case 'kill': {
        if (this.exited) return this.answer(s, { ok: false, error: 'it is not running', kind: 'state' });
        if (this.cfg.mode === 'disk') {
          // no agent: SIGKILL pulls the plug, any other signal presses the power button (ACPI)
          if (req.signal === 9) this.mainExited(137, 'killed by signal 9 (SIGKILL): QEMU was stopped');
          else await this.powerdown();
          return this.answer(s, { ok: true });
        }
        if (this.phase === 'booting' || this.phase === 'ready') {
          // nothing runs in the guest yet: a kill ends the VM
          this.mainExited(128 + req.signal, `killed by signal ${req.signal} before its process started`);
          return this.answer(s, { ok: true });
        }
        this.toAgent(encodeFrame(T.SIGNAL, req.all ? ALL_SESSIONS : 0, u32(req.signal)));
        if (req.signal === 9 && !this.hardKillTimer) {
          // SIGKILL must work even when the guest does not answer: after a grace period QEMU goes
          this.hardKillTimer = setTimeout(
            () => this.mainExited(137, 'the guest did not end its process on SIGKILL; the VM was stopped'),
            5000,
          );
        }
        return this.answer(s, { ok: true });
      }
      case 'pause':
      case 'resume': {
        const q = await this.qmpReady;
        await q.execute(req.op === 'pause' ? 'stop' : 'cont');
        this.phase = req.op === 'pause' ? 'paused' : 'running';
        return this.answer(s, { ok: true });
      }
      case 'balloon': {
        if (this.cfg.deviceModel !== 'virtio')
          return this.answer(s, {
            ok: false,
            error: 'this VM has no balloon device (emulated device model)',
            kind: 'state',
          });
        const q = await this.qmpReady;
        await q.execute('balloon', { value: req.bytes });
        this.balloonTarget = req.bytes;
        return this.answer(s, { ok: true });
      }
      case 'stats':
        return this.answer(s, { ok: true, stats: await this.stats() });
      case 'trace': {
        const q = await this.qmpReady;
        for (const name of req.events)
          await q.execute('trace-event-set-state', { name, enable: req.enable, 'ignore-unavailable': true });
        return this.answer(s, { ok: true });
      }
      case 'shutdown':
        if (!this.exited) this.mainExited(255, 'the VM was shut down by hull');
        // answer once QEMU is gone
        if (this.qemu && this.qemu.exitCode === null && this.qemu.signalCode === null)
          await new Promise((r) => this.qemu!.once('exit', r));
        return this.answer(s, { ok: true });
      case 'console':
        return this.consoleAttach(s, rest);
      case 'guest':
        return this.guestRequest(s, req);
      case 'exec':
      case 'attach':
        if (this.cfg.mode === 'disk')
          return this.answer(s, {
            ok: false,
            error: 'it boots its own OS from a disk image and has no hull agent; use hull console',
            kind: 'state',
          });
        return req.op === 'exec' ? this.exec(s, req.spec, rest) : this.attach(s, rest);
      default:
        return this.answer(s, { ok: false, error: `unknown request ${(req as { op: string }).op}` });
    }
  }

  private async stats(): Promise<VmStats> {
    const pid = this.qemu?.pid ?? 0;
    const st: VmStats = {
      qemuPid: pid,
      cpuNs: procCpuNs(pid),
      qemuRss: procRss(pid),
      actual: this.cfg.memory,
      target: this.balloonTarget,
      blkRead: 0,
      blkWrite: 0,
      blkReadOps: 0,
      blkWriteOps: 0,
      ...tapCounters(pid),
    };
    const q = this.qmp;
    if (!q) return st;
    const jobs: Promise<unknown>[] = [
      q
        .execute<
          {
            device: string;
            stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number };
          }[]
        >('query-blockstats')
        .then((r) => {
          for (const d of r) {
            st.blkRead += d.stats.rd_bytes;
            st.blkWrite += d.stats.wr_bytes;
            st.blkReadOps += d.stats.rd_operations;
            st.blkWriteOps += d.stats.wr_operations;
          }
        }),
    ];
    if (this.cfg.deviceModel === 'virtio') {
      jobs.push(q.execute<{ actual: number }>('query-balloon').then((r) => (st.actual = r.actual)));
      jobs.push(
        q
          .execute<{ stats: Record<string, number>; 'last-update': number }>('qom-get', {
            path: '/machine/peripheral/balloon0',
            property: 'guest-stats',
          })
          .then((r) => {
            if (r['last-update'] > 0) {
              const g = r.stats;
              const v = (k: string) => (g[k] !== undefined && g[k]! >= 0 ? g[k] : undefined);
              st.guest = {
                total: v('stat-total-memory'),
                free: v('stat-free-memory'),
                available: v('stat-available-memory'),
              };
            }
          }),
      );
    }
    if (this.cfg.mode === 'agent' && this.phase === 'running' && this.agent) {
      jobs.push(
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000); // a busy guest: stats go out without the count
          this.countWaiters.push((n) => {
            clearTimeout(t);
            st.pids = n;
            resolve();
          });
          this.toAgent(encodeFrame(T.COUNT, QUERY_SESSION));
        }),
      );
    }
    await Promise.allSettled(jobs);
    return st;
  }

  private async exec(s: Socket, spec: ProcessSpec, rest: Buffer): Promise<void> {
    if (this.phase !== 'running' && this.phase !== 'paused')
      return this.answer(s, { ok: false, error: 'it is not running', kind: 'state' });
    const session = this.nextSession++;
    this.execs.set(session, s);
    this.answer(s, { ok: true, session }, false);
    const dec = new FrameDecoder();
    const relay = (b: Buffer): void => {
      for (const f of dec.push(b)) {
        if (f.type === T.STDIN || f.type === T.RESIZE || f.type === T.SIGNAL)
          this.toAgent(encodeFrame(f.type, session, f.payload));
      }
    };
    s.on('data', relay);
    s.on('close', () => this.execs.delete(session));
    this.toAgent(encodeFrame(T.EXEC, session, encodeSpec(spec)));
    if (rest.length) relay(rest);
  }

  private async attach(s: Socket, rest: Buffer): Promise<void> {
    if (this.exited) return this.answer(s, { ok: false, error: 'it is not running', kind: 'state' });
    this.attached.add(s);
    this.answer(s, { ok: true }, false);
    const dec = new FrameDecoder();
    const relay = (b: Buffer): void => {
      for (const f of dec.push(b)) {
        if (f.type === T.STDIN) {
          if (this.phase === 'running' || this.phase === 'paused') this.toAgent(encodeFrame(T.STDIN, 0, f.payload));
          else this.pendingStdin.push(f.payload);
        } else if (f.type === T.RESIZE && f.payload.length >= 4) {
          // kept for the START message when the process has not started yet (run -t attaches first)
          this.mainSize = { rows: f.payload.readUInt16LE(0), cols: f.payload.readUInt16LE(2) };
          if (this.phase === 'running' || this.phase === 'paused') this.toAgent(encodeFrame(T.RESIZE, 0, f.payload));
        }
      }
    };
    s.on('data', relay);
    s.on('close', () => this.attached.delete(s));
    if (rest.length) relay(rest);
  }

  /** SIGTERM to the monitor (hull's clean-up): stop the VM as shutdown does. */
  terminate(): void {
    if (!this.exited) this.mainExited(255, 'the VM monitor was terminated');
    else this.stopQemu();
  }
}

/** Entry point: `vm-monitor <instance dir>`. */
export async function monitorMain(dir: string): Promise<void> {
  process.chdir(dir);
  let cfg: MonitorConfig;
  const report = (line: string): void => {
    try {
      process.stdout.write(line + '\n');
      process.stdout.end();
    } catch {
      /* the driver stopped listening */
    }
  };
  try {
    cfg = JSON.parse(readFileSync(instancePaths(dir).vmConfig, 'utf8')) as MonitorConfig;
  } catch (e) {
    report(`error cannot read ${instancePaths(dir).vmConfig}: ${(e as Error).message}`);
    process.exit(1);
  }
  writeFileSync(instancePaths(dir).monitorPid, String(process.pid));
  const m = new Monitor(dir, cfg);
  process.on('SIGTERM', () => m.terminate());
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGPIPE', () => undefined);
  try {
    await m.run();
  } catch (e) {
    report(`error ${(e as Error).message}`);
    process.exit(1);
  }
  report(`ok ${readFileSync(instancePaths(dir).qemuPid, 'utf8')}`);
}

/** The guest's network traffic from the taps in QEMU's network namespace (tap0, tap1, …): a tap's tx is the guest's rx. */
function tapCounters(pid: number): { netRx: number; netTx: number } {
  let netRx = 0;
  let netTx = 0;
  if (pid <= 0) return { netRx, netTx };
  try {
    for (const line of readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2)) {
      const [name, rest] = line.split(':');
      if (!rest || !/^tap\d+$/.test(name!.trim())) continue;
      const f = rest.trim().split(/\s+/).map(Number);
      netTx += f[0] ?? 0;
      netRx += f[8] ?? 0;
    }
  } catch {
    /* QEMU gone */
  }
  return { netRx, netTx };
}

/**
 * QEMU asks for transparent huge pages on guest RAM (and TCG's code cache); where the host grants them (THP
 * "madvise", Debian's default) every 4 KiB page a guest touches costs the host 2 MiB, and a restored template's
 * scattered pages fill whole huge pages. PR_SET_THP_DISABLE (prctl 41), inherited across exec, turns that off
 * for QEMU: its memory follows the guest's pages (idle VM: bench/vm.ts). Perl (Debian's essential perl-base)
 * makes the call and execs QEMU, so no extra process stays; without perl QEMU starts as it is.
 */
function withoutTransparentHugePages(): string[] {
  if (!existsSync(PERL)) return [];
  return [PERL, '-e', 'syscall(157, 41, 1, 0, 0, 0); exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"'];
}
const PERL = '/usr/bin/perl';
