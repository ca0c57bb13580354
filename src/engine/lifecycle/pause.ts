import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';
import { StateError } from '../../common/errors.js';

/** pause: running → paused (cgroup freezer). */
export async function pauseInstance(engine: Engine, ref: InstanceRecord): Promise<void> {
  const cur = await refresh(engine, ref);
  if (!cur) throw new StateError(`cannot pause instance ${ref.name}: it was removed`);
  const rec = engine.store.transition(cur.id, ['running'], 'paused', {}, 'pause');
  try {
    await engine.driver(rec.kind).pause(engine.context(rec));
  } catch (e) {
    engine.store.tryTransition(rec.id, ['paused'], 'running');
    throw e;
  }
  engine.event(rec, 'pause');
}

/** unpause: paused → running. */
export async function unpauseInstance(engine: Engine, ref: InstanceRecord): Promise<void> {
  const cur = await refresh(engine, ref);
  if (!cur) throw new StateError(`cannot unpause instance ${ref.name}: it was removed`);
  const rec = engine.store.transition(cur.id, ['paused'], 'running', {}, 'unpause');
  try {
    await engine.driver(rec.kind).resume(engine.context(rec));
  } catch (e) {
    engine.store.tryTransition(rec.id, ['running'], 'paused');
    throw e;
  }
  engine.event(rec, 'unpause');
}
