import type { Resources } from '../../common/instance.js';
import { StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';
import { saveInstanceFile } from '../instance-file.js';

/**
 * update: change resource limits; applied live to a running|paused instance and kept for later starts.
 * Allowed in every state but removing.
 */
export async function updateInstance(
  engine: Engine,
  ref: InstanceRecord,
  changes: Resources,
  restart?: InstanceRecord['config']['restart'],
): Promise<InstanceRecord> {
  const rec = await refresh(engine, ref);
  if (!rec || rec.state === 'removing') throw new StateError(`cannot update instance ${ref.name}: it is being removed`);
  const resources: Resources = { ...rec.config.resources, ...stripUndefined(changes) };
  // docker: raising --memory above an explicit --memory-swap needs the swap raised too
  if (
    changes.memory !== undefined &&
    changes.memorySwap === undefined &&
    rec.config.resources.memorySwap !== undefined &&
    rec.config.resources.memorySwap > 0 &&
    changes.memory > rec.config.resources.memorySwap
  ) {
    resources.memorySwap = -1;
  }
  const config = { ...rec.config, resources, ...(restart ? { restart } : {}) };
  if (restart && config.autoRemove && restart.name !== 'no') {
    throw new StateError(`cannot set a restart policy on ${rec.name}: it was created with --rm`);
  }
  if (rec.state === 'running' || rec.state === 'paused') {
    await engine.driver(rec.kind).update(engine.context({ ...rec, config }), stripUndefined(changes));
  }
  engine.store.patch(rec.id, { config });
  saveInstanceFile(engine.instanceDir(rec.id), { ...rec, config });
  engine.event(rec, 'update');
  return engine.store.get(rec.id)!;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
