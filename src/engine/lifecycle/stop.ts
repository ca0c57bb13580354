import type { ExitInfo } from '../../common/instance.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { handleExit, refresh } from './exit.js';

/**
 * stop: running|paused → exited. The instance's stop signal, then SIGKILL after the timeout. Marks the
 * instance as stopped by the user so restart policies leave it alone. Stopping a stopped instance is a no-op.
 */
export async function stopInstance(
  engine: Engine,
  ref: InstanceRecord,
  timeoutSec?: number,
): Promise<InstanceRecord | undefined> {
  engine.store.patch(ref.id, { stoppedByUser: true });
  const rec = await refresh(engine, ref);
  if (!rec) return undefined;
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  if (rec.state === 'created') {
    // never started: take down the supervisor and runtime state
    await driver.cleanupAfterExit(ctx);
    engine.store.tryTransition(rec.id, ['created'], 'exited', { exitCode: 0, finishedAt: Date.now(), pid: 0 });
    return engine.store.get(rec.id);
  }
  if (rec.state !== 'running' && rec.state !== 'paused') return rec;
  const timeout = (timeoutSec ?? rec.config.stopTimeout) * 1000;
  let info: ExitInfo | undefined;
  if (timeout > 0) {
    await driver.kill(ctx, rec.config.stopSignal).catch(() => undefined);
    if (rec.state === 'paused') await driver.resume(ctx).catch(() => undefined);
    info = await driver.waitExit(ctx, AbortSignal.timeout(timeout)).catch(() => undefined);
  }
  if (!info) {
    await driver.kill(ctx, 'SIGKILL', true).catch(() => undefined);
    if (rec.state === 'paused') await driver.resume(ctx).catch(() => undefined);
    info = await driver.waitExit(ctx, AbortSignal.timeout(30_000));
  }
  await handleExit(engine, rec, info);
  engine.event(rec, 'stop');
  return engine.store.get(rec.id);
}
