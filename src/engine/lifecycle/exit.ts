import type { ExitInfo } from '../../common/instance.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { removeInstance } from './remove.js';
import { startInstance } from './start.js';
import { trace } from '../../common/trace.js';
import { detachAfterExit } from '../networking.js';
import { isNoSpaceError } from '../../host/fserror.js';
import { signalExitReason } from '../../host/exitwatch.js';
import { supervisedElsewhere } from '../lease.js';

/**
 * What an exit's code does not tell by itself (a guest kernel panic, an OOM kill, a supervisor that died), for
 * the foreground `run` to say on stderr; null when the code says it all (0, a status, killed by signal N).
 */
export function exitMessage(info: ExitInfo): string | null {
  if (!info.reason || info.reason === signalExitReason(info.exitCode)) return null;
  return info.reason;
}

/**
 * Bring a record up to date with reality: if its process exited (or its supervisor died), process the exit.
 * Returns the fresh record, or undefined when the exit handling removed it (--rm).
 */
export async function refresh(engine: Engine, rec: InstanceRecord): Promise<InstanceRecord | undefined> {
  const cur = engine.store.get(rec.id);
  if (!cur) return undefined;
  const info = engine.observedExit(cur);
  if (info) {
    await handleExit(engine, cur, info);
    return engine.store.get(rec.id);
  }
  return cur;
}

/**
 * refresh for commands that only show state (ps, inspect): when the exit cannot be recorded because the disk is
 * full, the record is shown with the observed exit applied, not stored (the next command that can write records it).
 */
export async function refreshForView(engine: Engine, rec: InstanceRecord): Promise<InstanceRecord | undefined> {
  try {
    return await refresh(engine, rec);
  } catch (e) {
    if (!isNoSpaceError(e)) throw e;
    const cur = engine.store.get(rec.id);
    if (!cur) return undefined;
    const info = engine.observedExit(cur);
    return info
      ? {
          ...cur,
          state: 'exited',
          exitCode: info.exitCode,
          finishedAt: info.finishedAt,
          exitReason: info.reason ?? null,
          pid: 0,
        }
      : cur;
  }
}

/** How long an exit's `die` event waits for its run's `start` event (see handleExit). */
const START_EVENT_WAIT_MS = 3000;

/**
 * The exit of an instance's process: running|paused → exited, once (a compare-and-set: the CLI waiting in the
 * foreground and conmon's exit command may both get here; one wins). Then runtime clean-up, --rm, and the
 * restart policy.
 */
export async function handleExit(
  engine: Engine,
  rec: InstanceRecord,
  info: ExitInfo,
  opts: { applyRestart?: boolean } = {},
): Promise<boolean> {
  const done = engine.store.tryTransition(rec.id, ['running', 'paused'], 'exited', {
    exitCode: info.exitCode,
    finishedAt: info.finishedAt,
    exitReason: info.reason ?? null,
    oomKilled: info.oomKilled === true,
    pid: 0,
  });
  if (!done) return false;
  trace('exit: recorded');
  // docker's order: start, (oom,) die. A process that ends at once can be seen to exit (by conmon's exit command,
  // the daemon, a waiting CLI) before the start verb, which records `start` once the runtime's start returns, has
  // done so: wait for that record a moment (the start verb may have died: then go on without it). Only for a run
  // that began seconds ago: an older one's start was recorded long since (or lost with a rebuilt hull.db)
  if (done.startedAt && Date.now() - done.startedAt < 10_000) {
    const until = Date.now() + START_EVENT_WAIT_MS;
    while (!engine.store.hasEvent(done.id, 'start', done.startedAt) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
  }
  if (info.oomKilled) engine.event(done, 'oom');
  engine.event(done, 'die', { exitCode: String(info.exitCode), ...(info.reason ? { reason: info.reason } : {}) });
  const driver = engine.driver(done.kind);
  // a stopped instance holds no address or published port (docker's behaviour); start attaches again. The
  // runtime's clean-up and the network's are independent (the process is gone): both at once
  await Promise.all([
    driver.cleanupAfterExit(engine.context(done)).catch(() => undefined),
    detachAfterExit(engine, done).catch(() => undefined),
  ]);
  trace('exit: runtime cleaned up');
  if (done.config.autoRemove) {
    await removeInstance(engine, done, { force: true });
    return true;
  }
  if (opts.applyRestart !== false && shouldRestart(done)) {
    // a daemon applies restart policies while it runs (../supervisor.ts): in-process it is told; another
    // process leaves the exit to the daemon, which watches the instance (no restart applied twice)
    if (engine.supervisor) engine.supervisor.exited(done);
    else if (!supervisedElsewhere(engine.root)) await restartAfterExit(engine, done);
  }
  return true;
}

/** docker's restart policies: always / unless-stopped unless stopped by the user; on-failure for non-zero exits. */
export function shouldRestart(rec: InstanceRecord): boolean {
  if (rec.stoppedByUser) return false;
  const p = rec.config.restart;
  switch (p.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return (rec.exitCode ?? 0) !== 0 && (p.maxRetries === 0 || rec.restartCount < p.maxRetries);
    default:
      return false;
  }
}

/** Back-off as docker: 100 ms doubling per quick restart, at most a minute; reset after 10 s of running. */
export function restartDelay(rec: InstanceRecord): number {
  const ran = (rec.finishedAt ?? 0) - (rec.startedAt ?? 0);
  if (ran >= 10_000) return 100;
  return Math.min(100 * 2 ** Math.min(rec.restartCount, 10), 60_000);
}

async function restartAfterExit(engine: Engine, rec: InstanceRecord): Promise<void> {
  await new Promise((r) => setTimeout(r, restartDelay(rec)));
  await restartNow(engine, rec);
}

/**
 * Apply the restart policy to the exit `rec` records, now (the caller waited restartDelay); false when the restart
 * failed. Nothing happens when the user stopped, started or removed the instance since.
 */
export async function restartNow(engine: Engine, rec: InstanceRecord): Promise<boolean> {
  const cur = engine.store.get(rec.id);
  // the user may have stopped, started or removed it meanwhile
  if (!cur || cur.state !== 'exited' || cur.stoppedByUser || cur.finishedAt !== rec.finishedAt) return true;
  try {
    await startInstance(engine, cur, { restartCount: cur.restartCount + 1 });
    engine.event(cur, 'restart', { restartCount: String(cur.restartCount + 1) });
  } catch {
    // a failed restart leaves the instance exited with the start error recorded
    return false;
  }
  return true;
}
