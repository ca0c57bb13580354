/**
 * Healthchecks without a daemon: start spawns a small detached monitor per instance run
 * (`hull system health-monitor ID`) that runs ../health.ts's probe loop and records each result in the store;
 * it ends when the run ends (the instance exits, is stopped, restarted or removed). `hull healthcheck run`
 * runs one probe now. docker restarts no instance for being unhealthy (only on exit), and neither does hull.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import type { InstanceContext, InstanceDriver } from '../../common/instance.js';
import { InvalidArgumentError, StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import {
  abortableSleep,
  applyHealthResult,
  HEALTH_OUTPUT_MAX,
  healthLoop,
  runProbe,
  type HealthResult,
  type HealthState,
  type HealthStatus,
  type ProbeOutcome,
} from '../health.js';
import { refresh } from './exit.js';
import { supervisedElsewhere } from '../lease.js';

/**
 * Have an instance's current run monitored: by the daemon when this process is the daemon or a daemon holds the
 * root's lease (it finds the run within a second), else by a detached monitor process, which outlives the
 * command that started it.
 */
export function monitorRun(engine: Engine, rec: InstanceRecord): void {
  if (engine.supervisor) return engine.supervisor.started(rec);
  if (!supervisedElsewhere(engine.root)) spawnHealthMonitor(engine, rec);
}

/** Start the detached monitor of an instance's current run. */
export function spawnHealthMonitor(engine: Engine, rec: InstanceRecord): void {
  if (!rec.config.healthcheck) return;
  const [cmd, ...args] = engine.self;
  const child = spawn(cmd!, [...args, '--root', engine.root, 'system', 'health-monitor', rec.id], {
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', () => undefined);
  child.unref();
}

/** One probe: an exec of the test in the instance, stdout and stderr together (the first 4 KiB kept). */
export async function execProbe(
  driver: InstanceDriver,
  ctx: InstanceContext,
  argv: string[],
  // a probe past its timeout is abandoned (its result recorded as a failure); it ends with the instance at latest
  _signal?: AbortSignal,
): Promise<ProbeOutcome> {
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      if (size < HEALTH_OUTPUT_MAX) chunks.push(b);
      size += b.length;
      cb();
    },
  });
  const exitCode = await driver.exec(
    ctx,
    { command: argv, env: [], tty: false, stdin: false, privileged: false, detach: false },
    { stdin: null, stdout: sink, stderr: sink },
  );
  return { exitCode, output: Buffer.concat(chunks).toString() };
}

const isLive = (r: InstanceRecord | undefined, startedAt: number | null): r is InstanceRecord =>
  !!r && (r.state === 'running' || r.state === 'paused') && r.startedAt === startedAt;

/** Record one result of the run that began at `startedAt`; null when that run is over. */
function record(
  engine: Engine,
  id: string,
  startedAt: number | null,
  result: HealthResult,
): { prev: HealthStatus; next: HealthState } | null {
  const hc = engine.store.get(id)?.config.healthcheck;
  if (!hc) return null;
  const done = engine.store.updateHealth(id, (cur) =>
    isLive(cur, startedAt) ? applyHealthResult(cur.health, result, hc, cur.startedAt ?? 0) : null,
  );
  return done ? { prev: done.prev.health?.status ?? 'starting', next: done.next } : null;
}

function healthEvent(engine: Engine, rec: InstanceRecord, status: HealthStatus): void {
  engine.event(rec, `health_status: ${status}`);
}

/**
 * Probe an instance's current run every interval until that run ends or `signal` aborts. The detached monitor
 * (`hull system health-monitor ID`) runs it until a daemon takes over (`yieldWhen`); the daemon runs it
 * in-process (../supervisor.ts).
 */
export async function monitorHealth(
  engine: Engine,
  id: string,
  opts: { signal?: AbortSignal; yieldWhen?: () => boolean } = {},
): Promise<void> {
  const rec = engine.store.get(id);
  const hc = rec?.config.healthcheck;
  if (!rec || !hc || !isLive(rec, rec.startedAt)) return;
  const startedAt = rec.startedAt;
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) ac.abort();
  // the run ends: stop at once (not at the next round), so that no monitor outlives its instance
  void driver.waitExit(ctx, ac.signal).then(
    () => ac.abort(),
    () => ac.abort(),
  );
  try {
    await healthLoop({
      hc,
      signal: ac.signal,
      sleep: abortableSleep,
      probe: () => runProbe(hc, (argv, signal) => execProbe(driver, ctx, argv, signal)),
      record: async (r) => record(engine, id, startedAt, r),
      changed: (status) => healthEvent(engine, rec, status),
      skip: async () => {
        const cur = engine.store.get(id);
        if (!isLive(cur, startedAt) || opts.yieldWhen?.()) ac.abort();
        return cur?.state !== 'running' || ac.signal.aborted;
      },
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    ac.abort();
  }
}

/**
 * The detached monitor's main (`hull system health-monitor ID`): monitorHealth until the run ends, or until a
 * daemon holds the root's lease (the daemon then monitors the instance itself).
 */
export async function runHealthMonitor(engine: Engine, id: string): Promise<void> {
  if (supervisedElsewhere(engine.root)) return;
  // a database set aside by `hull system recover` is no longer the root's: the rebuilt record gets its own monitor
  await monitorHealth(engine, id, {
    yieldWhen: () => supervisedElsewhere(engine.root) || engine.store.replaced(),
  });
}

/** `hull healthcheck run`: one probe now, recorded as the monitor records them; returns the resulting health. */
export async function runHealthcheckNow(engine: Engine, ref: InstanceRecord): Promise<HealthState> {
  const rec = await refresh(engine, ref);
  const hc = rec?.config.healthcheck;
  if (!rec) throw new StateError(`cannot run the healthcheck of ${ref.name}: it was removed`);
  if (!hc) throw new InvalidArgumentError(`instance ${rec.name} has no healthcheck (create it with --health-cmd)`);
  if (rec.state !== 'running')
    throw new StateError(`cannot run the healthcheck of ${rec.name}: it is ${rec.state} (hull start ${rec.name})`);
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  const result = await runProbe(hc, (argv, signal) => execProbe(driver, ctx, argv, signal));
  const done = record(engine, rec.id, rec.startedAt, result);
  if (!done) throw new StateError(`cannot record the healthcheck of ${rec.name}: it stopped meanwhile`);
  if (done.next.status !== done.prev) healthEvent(engine, rec, done.next.status);
  return done.next;
}
