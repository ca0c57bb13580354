/**
 * A fake instance driver for the unit tier: it implements InstanceDriver (src/common/instance.ts) with no
 * runtime, no root and no mounts, so the engine's lifecycle logic (rollback, restart policies, reconciliation)
 * can be tested in milliseconds. Everything is state in memory: each instance's "supervisor" has a pid that no
 * process can have (above the kernel's pid limit) and is alive until the instance exits or killSupervisor()
 * ends it without an exit record, as a crashed conmon would; exit() ends the instance's "process" with a
 * status, as the supervisor's exit record would. configure() adds no kind section (the fake needs none).
 *
 * Faults are injected with failNext(step, error, { afterDir }).
 * Kept in one file so that it follows the InstanceDriver interface in one place.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  ConfigureEnv,
  CreateResult,
  DriverCapabilities,
  ExecOptions,
  ExitInfo,
  InstanceContext,
  InstanceDriver,
  InstanceKind,
  InstanceStats,
  IsolationRequest,
  KindConfig,
  ProcessInfo,
  Resources,
  RuntimeStatus,
  StdioStreams,
} from '../../src/common/instance.js';

export type FakeStep = 'create' | 'start' | 'kill' | 'delete' | 'cleanupAfterExit';

interface FakeInstance {
  status: RuntimeStatus;
  exit: ExitInfo | null;
  /** the supervisor's pid while it runs, else null */
  supervisor: number | null;
  waiters: Set<(info: ExitInfo) => void>;
}

/** Fake supervisor pids: above 2^22, the kernel's largest pid_max, so never a real process. */
let nextPid = 2 ** 22 + 1;

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

export class FakeDriver implements InstanceDriver {
  readonly supervisorName = 'fake-conmon';
  readonly capabilities: DriverCapabilities = { liveNetworkChanges: true, console: false, diskImages: false };
  /** every call, as "method id", in order */
  readonly calls: string[] = [];
  /** signals the fake process ignores (as `trap '' TERM` would) */
  ignoreSignals = new Set<string>();
  private readonly instances = new Map<string, FakeInstance>();
  private readonly faults = new Map<FakeStep, { error: Error; afterDir: boolean }>();

  constructor(readonly kind: InstanceKind = 'container') {}

  /** The next call of `step` fails with `error`; for create, `afterDir` makes it fail after the instance dir exists. */
  failNext(step: FakeStep, error: Error, opts: { afterDir?: boolean } = {}): void {
    this.faults.set(step, { error, afterDir: opts.afterDir ?? false });
  }

  private fault(step: FakeStep): { error: Error; afterDir: boolean } | undefined {
    const f = this.faults.get(step);
    this.faults.delete(step);
    return f;
  }

  private inst(ctx: InstanceContext): FakeInstance {
    let i = this.instances.get(ctx.id);
    if (!i) {
      i = { status: 'unknown', exit: null, supervisor: null, waiters: new Set() };
      this.instances.set(ctx.id, i);
    }
    return i;
  }

  /** The instance's process exits with `exitCode`: the supervisor writes its exit record and goes. */
  exit(id: string, exitCode: number, reason?: string): void {
    const i = this.instances.get(id);
    if (!i || i.status === 'stopped') throw new Error(`fake instance ${id} is not running`);
    i.status = 'stopped';
    i.exit = { exitCode, finishedAt: Date.now(), ...(reason ? { reason } : {}) };
    this.stopSupervisor(i);
    for (const w of i.waiters) w(i.exit);
    i.waiters.clear();
  }

  /** The supervisor dies without writing an exit record (a crashed conmon). */
  async killSupervisor(id: string): Promise<void> {
    const i = this.instances.get(id);
    if (!i || i.supervisor === null) throw new Error(`fake instance ${id} has no live supervisor`);
    i.supervisor = null;
  }

  /** Supervisors still running (the unit tests check that none is left). */
  liveSupervisors(): number[] {
    return [...this.instances.values()].map((i) => i.supervisor).filter((p): p is number => p !== null);
  }

  private stopSupervisor(i: FakeInstance): void {
    i.supervisor = null;
  }

  configure(_req: IsolationRequest, _env: ConfigureEnv): KindConfig {
    this.calls.push('configure');
    return {};
  }

  supervisorAlive(ctx: InstanceContext, pid: number): boolean {
    const sup = this.instances.get(ctx.id)?.supervisor;
    return sup !== null && sup !== undefined && sup === pid;
  }

  async create(ctx: InstanceContext): Promise<CreateResult> {
    this.calls.push(`create ${ctx.id}`);
    const f = this.fault('create');
    if (f && !f.afterDir) throw f.error;
    mkdirSync(ctx.dir, { recursive: true });
    writeFileSync(join(ctx.dir, 'fake-bundle.json'), JSON.stringify({ command: ctx.config.command }));
    if (f) throw f.error;
    const i = this.inst(ctx);
    this.stopSupervisor(i);
    i.supervisor = nextPid++;
    i.status = 'created';
    i.exit = null;
    return { supervisorPid: i.supervisor, pid: i.supervisor };
  }

  async start(ctx: InstanceContext): Promise<void> {
    this.calls.push(`start ${ctx.id}`);
    const f = this.fault('start');
    if (f) throw f.error;
    const i = this.inst(ctx);
    if (i.status !== 'created') throw new Error(`fake instance ${ctx.id} cannot start from ${i.status}`);
    i.status = 'running';
  }

  async kill(ctx: InstanceContext, signal: string): Promise<void> {
    this.calls.push(`kill ${ctx.id} ${signal}`);
    const f = this.fault('kill');
    if (f) throw f.error;
    const i = this.inst(ctx);
    if (i.status !== 'running' && i.status !== 'paused') return;
    if (this.ignoreSignals.has(signal) && signal !== 'SIGKILL') return;
    const n = SIGNALS[signal] ?? Number(signal);
    this.exit(ctx.id, 128 + n, signal === 'SIGKILL' ? 'killed by signal 9' : undefined);
  }

  async status(ctx: InstanceContext): Promise<{ status: RuntimeStatus; pid: number }> {
    const i = this.instances.get(ctx.id);
    return { status: i?.status ?? 'unknown', pid: i?.supervisor ?? 0 };
  }

  exitInfo(ctx: InstanceContext): ExitInfo | null {
    return this.instances.get(ctx.id)?.exit ?? null;
  }

  waitExit(ctx: InstanceContext, signal?: AbortSignal): Promise<ExitInfo> {
    const i = this.inst(ctx);
    if (i.exit) return Promise.resolve(i.exit);
    return new Promise((resolve, reject) => {
      // keeps the event loop alive while waiting, as the real drivers' polling does (AbortSignal.timeout's
      // timer does not)
      const keepAlive = setInterval(() => undefined, 60_000);
      const done = (info: ExitInfo): void => {
        clearInterval(keepAlive);
        signal?.removeEventListener('abort', abort);
        resolve(info);
      };
      const abort = (): void => {
        clearInterval(keepAlive);
        i.waiters.delete(done);
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      i.waiters.add(done);
    });
  }

  async pause(ctx: InstanceContext): Promise<void> {
    this.calls.push(`pause ${ctx.id}`);
    this.inst(ctx).status = 'paused';
  }

  async resume(ctx: InstanceContext): Promise<void> {
    this.calls.push(`resume ${ctx.id}`);
    this.inst(ctx).status = 'running';
  }

  async update(ctx: InstanceContext, _resources: Resources): Promise<void> {
    this.calls.push(`update ${ctx.id}`);
  }

  async stats(_ctx: InstanceContext): Promise<InstanceStats> {
    return { cpuUsageNs: 0, memoryUsage: 0, memoryLimit: 0, pids: 1, blkioRead: 0, blkioWrite: 0, netRx: 0, netTx: 0 };
  }

  async top(_ctx: InstanceContext, _psArgs: string[]): Promise<ProcessInfo> {
    return { titles: ['PID', 'CMD'], rows: [] };
  }

  async exec(ctx: InstanceContext, opts: ExecOptions, _stdio: StdioStreams): Promise<number> {
    this.calls.push(`exec ${ctx.id} ${opts.command.join(' ')}`);
    return 0;
  }

  async attach(_ctx: InstanceContext, _stdio: StdioStreams): Promise<void> {}

  logPath(ctx: InstanceContext): string {
    return join(ctx.dir, 'ctr.log');
  }

  async delete(ctx: InstanceContext): Promise<void> {
    this.calls.push(`delete ${ctx.id}`);
    const f = this.fault('delete');
    if (f) throw f.error;
    const i = this.instances.get(ctx.id);
    if (i) this.stopSupervisor(i);
    this.instances.delete(ctx.id);
    rmSync(ctx.dir, { recursive: true, force: true });
  }

  async cleanupAfterExit(ctx: InstanceContext): Promise<void> {
    this.calls.push(`cleanupAfterExit ${ctx.id}`);
    const f = this.fault('cleanupAfterExit');
    if (f) throw f.error;
    const i = this.instances.get(ctx.id);
    if (!i) return;
    this.stopSupervisor(i);
    if (i.status !== 'stopped') i.status = 'stopped';
  }
}
