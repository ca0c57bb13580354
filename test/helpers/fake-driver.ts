/**
 * A fake instance driver for the unit tier: it implements InstanceDriver (src/common/instance.ts) with no
 * runtime, no root and no mounts, so the engine's lifecycle logic (rollback, restart policies, reconciliation)
 * can be tested in milliseconds. Each instance's "supervisor" is a real `sleep` process whose command line
 * says conmon (argv0 fake-conmon), so the engine's liveness check sees it like conmon; killSupervisor() kills
 * it without an exit record, as a crashed conmon would. The instance's "process" is state in memory: exit()
 * ends it with a status as the supervisor's exit record would.
 *
 * Faults are injected with failNext(step, error, { afterDir }).
 * Kept in one file so that it follows the InstanceDriver interface in one place.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  CreateResult,
  ExecOptions,
  ExitInfo,
  InstanceContext,
  InstanceDriver,
  InstanceKind,
  InstanceStats,
  ProcessInfo,
  Resources,
  RuntimeStatus,
  StdioStreams,
} from '../../src/common/instance.js';

export type FakeStep = 'create' | 'start' | 'kill' | 'delete' | 'cleanupAfterExit';

interface FakeInstance {
  status: RuntimeStatus;
  exit: ExitInfo | null;
  supervisor: ChildProcess | null;
  waiters: Set<(info: ExitInfo) => void>;
}

/** Not exited, and not sent SIGKILL (the exit event of a killed child comes a little later). */
const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null && !c.killed;

/** Every fake supervisor started by any FakeDriver in this process, for killAllFakeSupervisors. */
const spawned = new Set<ChildProcess>();

/** Kill every fake supervisor still running (an after() hook, also when a test failed half-way); returns their pids. */
export function killAllFakeSupervisors(): number[] {
  const live = [...spawned].filter(running);
  for (const c of live) c.kill('SIGKILL');
  spawned.clear();
  return live.map((c) => c.pid!);
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

export class FakeDriver implements InstanceDriver {
  readonly supervisorName = 'fake-conmon';
  readonly liveNetworkChanges = true;
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

  /** The supervisor dies without writing an exit record (a crashed conmon). Resolves once it is gone. */
  async killSupervisor(id: string): Promise<void> {
    const sup = this.instances.get(id)?.supervisor;
    if (!sup || !running(sup)) throw new Error(`fake instance ${id} has no live supervisor`);
    const gone = new Promise<void>((resolve) => sup.once('exit', () => resolve()));
    sup.kill('SIGKILL');
    await gone;
  }

  /** Supervisors still running (the unit tests check that none is left). */
  liveSupervisors(): number[] {
    return [...this.instances.values()]
      .map((i) => i.supervisor)
      .filter((s): s is ChildProcess => s !== null && running(s))
      .map((s) => s.pid!);
  }

  private stopSupervisor(i: FakeInstance): void {
    if (i.supervisor && running(i.supervisor)) i.supervisor.kill('SIGKILL');
    i.supervisor = null;
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
    const sup = spawn('sleep', ['1000'], { argv0: 'fake-conmon', stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      sup.once('spawn', resolve);
      sup.once('error', reject);
    });
    spawned.add(sup); // killAllFakeSupervisors() in an after() hook ends them, also when a test failed half-way
    i.supervisor = sup;
    i.status = 'created';
    i.exit = null;
    return { supervisorPid: sup.pid!, pid: sup.pid! };
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
    return { status: i?.status ?? 'unknown', pid: i?.supervisor?.pid ?? 0 };
  }

  exitInfo(ctx: InstanceContext): ExitInfo | null {
    return this.instances.get(ctx.id)?.exit ?? null;
  }

  waitExit(ctx: InstanceContext, signal?: AbortSignal): Promise<ExitInfo> {
    const i = this.inst(ctx);
    if (i.exit) return Promise.resolve(i.exit);
    return new Promise((resolve, reject) => {
      const done = (info: ExitInfo): void => {
        signal?.removeEventListener('abort', abort);
        resolve(info);
      };
      const abort = (): void => {
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
