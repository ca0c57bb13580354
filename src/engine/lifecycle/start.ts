import { StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';
import { trace } from '../../common/trace.js';
import { attachInstance, detachInstance } from '../networking.js';
import { startingHealth } from '../health.js';
import { monitorRun } from './health.js';
import { volumesReady } from '../volumes.js';
import { rootDiskReady } from '../vm-disks.js';

/** The phases of a start, as startInstance's onPhase reports them. */
export const START_PHASES = [
  'preparing the root file system and networks',
  'creating the instance (its supervisor; a VM: its machine)',
  'starting its process (a VM: booting to its agent)',
  'running',
] as const;

/**
 * start: created|exited → running. An exited instance (or a created one whose supervisor is gone,
 * e.g. after a crash of the creating CLI) is re-created first: same instance, same writable layer.
 */
export async function startInstance(
  engine: Engine,
  ref: InstanceRecord,
  opts: {
    restartCount?: number;
    /** progress for long starts (a VM's boot): phase `n` of START_PHASES.length, its words */
    onPhase?: (n: number, what: string) => void;
  } = {},
): Promise<InstanceRecord> {
  const phase = (n: number) => opts.onPhase?.(n, START_PHASES[n - 1]!);
  let rec = await refresh(engine, ref);
  if (!rec) throw new StateError(`cannot start instance ${ref.name}: it was removed`);
  const driver = engine.driver(rec.kind);
  if (rec.state === 'running' || rec.state === 'paused') {
    // docker: starting a running container is a no-op. But a hull that died between recording the start and
    // the runtime's start leaves a "running" record whose process never began: start it now.
    if (rec.state === 'running' && (await driver.status(engine.context(rec))).status === 'created') {
      try {
        await driver.start(engine.context(rec));
        engine.event(rec, 'start');
      } catch (e) {
        // a concurrent start may have won
        if ((await driver.status(engine.context(rec))).status !== 'running') throw e;
      }
    }
    return rec;
  }
  if (rec.state === 'exited' || !engine.supervisorAlive(rec)) {
    phase(1);
    rec = engine.store.transition(rec.id, ['exited', 'created'], 'created', {}, 'start');
    const ctx = await engine.contextWithLayers(rec);
    await driver.cleanupAfterExit(ctx);
    // the pools of its volumes mounted (after a host restart, an umount by hand)
    volumesReady(engine, rec.config);
    rootDiskReady(engine, rec.config);
    try {
      await attachInstance(engine, rec, ctx);
      phase(2);
      const res = await driver.create(ctx);
      rec = engine.store.transition(
        rec.id,
        ['created'],
        'created',
        { pid: res.pid, supervisorPid: res.supervisorPid },
        'start',
      );
    } catch (e) {
      await driver.cleanupAfterExit(ctx).catch(() => undefined);
      await detachInstance(engine, rec).catch(() => undefined);
      throw e;
    }
  }
  rec = engine.store.transition(
    rec.id,
    ['created'],
    'running',
    {
      startedAt: Date.now(),
      stoppedByUser: false,
      oomKilled: false,
      ...(rec.config.healthcheck ? { health: startingHealth(rec.health) } : {}),
      ...(opts.restartCount !== undefined ? { restartCount: opts.restartCount } : {}),
    },
    'start',
  );
  const ctx = engine.context(rec);
  phase(3);
  try {
    // a DNS server the network set-up started listens before the instance's process runs
    await engine.networks.dnsReady(rec.id);
    await driver.start(ctx);
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode ?? 125;
    engine.store.tryTransition(rec.id, ['running'], 'exited', {
      exitCode: code,
      finishedAt: Date.now(),
      exitReason: (e as Error).message,
      pid: 0,
    });
    await driver.cleanupAfterExit(ctx).catch(() => undefined);
    await detachInstance(engine, rec).catch(() => undefined);
    throw e;
  }
  trace('start: started');
  phase(4);
  engine.event(rec, 'start');
  monitorRun(engine, rec);
  return engine.store.get(rec.id)!;
}
