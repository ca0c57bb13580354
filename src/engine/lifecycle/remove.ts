import { StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { trace } from '../../common/trace.js';
import { detachInstance } from '../networking.js';
import { isNoSpaceError } from '../../host/fserror.js';
import { removeAnonymousVolumes } from '../volumes.js';
import { removeRootDisk } from '../vm-disks.js';

/**
 * rm: created|exited → removing → gone; with force, running|paused too (killed first). Idempotent towards
 * half-removed instances (a crash during an earlier rm leaves state "removing", which rm -f finishes).
 */
export async function removeInstance(
  engine: Engine,
  rec: InstanceRecord,
  opts: { force?: boolean; volumes?: boolean } = {},
): Promise<void> {
  const cur = engine.store.get(rec.id);
  if (!cur) return;
  const driver = engine.driver(cur.kind);
  const live = cur.state === 'running' || cur.state === 'paused';
  if (live && !opts.force && !engine.observedExit(cur)) {
    throw new StateError(
      `cannot remove instance ${cur.name}: it is ${cur.state}; stop it first (hull stop ${cur.name}) or use hull rm -f`,
    );
  }
  const from = opts.force
    ? (['created', 'exited', 'running', 'paused', 'removing'] as const)
    : (['created', 'exited', 'running', 'paused'] as const);
  let r: InstanceRecord;
  let freedFirst = false;
  try {
    r = engine.store.transition(cur.id, from, 'removing', {}, 'remove');
  } catch (e) {
    // A disk too full to record even the removal (no space reserve left): with force, free the instance's space
    // first (processes, runtime state, files; all idempotent, so a repeated rm -f finishes), then record.
    if (!isNoSpaceError(e) || !opts.force) throw e;
    r = cur;
    freedFirst = true;
  }
  const ctx = engine.context(r);
  if (live) {
    await driver.kill(ctx, 'SIGKILL', true).catch(() => undefined);
    if (cur.state === 'paused') await driver.resume(ctx).catch(() => undefined);
    await driver.waitExit(ctx, AbortSignal.timeout(10_000)).catch(() => undefined);
  }
  await driver.delete(ctx);
  removeRootDisk(engine, cur.config);
  if (freedFirst) engine.store.transition(cur.id, from, 'removing', {}, 'remove');
  await detachInstance(engine, cur);
  engine.store.remove(cur.id);
  engine.event(cur, 'destroy');
  // anonymous volumes go with their instance on rm -v and --rm (docker's rule)
  if (opts.volumes || cur.config.autoRemove) removeAnonymousVolumes(engine, cur);
  trace('remove: done');
}
