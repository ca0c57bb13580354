import type { Engine } from '../engine.js';
import { Engine as EngineClass } from '../engine.js';
import { refresh, shouldRestart } from './exit.js';
import { startInstance } from './start.js';
import { detachInstance } from '../networking.js';
import { mountPools } from '../volumes.js';

/**
 * After a host restart every instance's processes are gone. The first hull command on a new boot marks
 * them exited and starts those whose restart policy says so (docker's daemon does this when it starts).
 * Returns the names of the instances it restarted.
 */
export async function restoreAfterBoot(engine: Engine): Promise<string[]> {
  const boot = EngineClass.bootId();
  const last = engine.store.getMeta('boot_id');
  if (last === boot) return [];
  engine.store.setMeta('boot_id', boot);
  if (last === undefined) return [];
  // loop-backed and device pools lost their mounts with the host: back before any instance starts
  mountPools(engine);
  const restarted: string[] = [];
  for (const rec of engine.store.list()) {
    if (rec.state === 'running' || rec.state === 'paused' || rec.state === 'created') {
      engine.store.tryTransition(rec.id, ['running', 'paused', 'created'], 'exited', {
        exitCode: rec.state === 'created' ? 0 : 255,
        finishedAt: Date.now(),
        exitReason: 'the host restarted',
        pid: 0,
      });
    }
    const cur = engine.store.get(rec.id);
    if (!cur) continue;
    await engine
      .driver(cur.kind)
      .cleanupAfterExit(engine.context(cur))
      .catch(() => undefined);
    // namespaces, bridges and rules died with the host (or, when a restart is simulated, are stale): release
    // the leases and records so that a start attaches afresh
    await detachInstance(engine, cur).catch(() => undefined);
    if (
      cur.state === 'exited' &&
      cur.config.restart.name !== 'no' &&
      (cur.config.restart.name !== 'on-failure' || shouldRestart(cur)) &&
      !cur.stoppedByUser
    ) {
      try {
        await startInstance(engine, cur);
        restarted.push(cur.name);
      } catch {
        // recorded on the instance by startInstance
      }
    }
  }
  return restarted;
}

/** Reconcile every live record with reality (exits missed while no hull process ran). */
export async function reconcileAll(engine: Engine): Promise<void> {
  for (const rec of engine.store.list()) {
    if (rec.state === 'running' || rec.state === 'paused') await refresh(engine, rec);
  }
}
