import { StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';

/** kill: send a signal to a running|paused instance's main process. */
export async function killInstance(engine: Engine, ref: InstanceRecord, signal: string): Promise<void> {
  const rec = await refresh(engine, ref);
  if (!rec || (rec.state !== 'running' && rec.state !== 'paused')) {
    throw new StateError(`cannot kill instance ${ref.name}: it is not running`);
  }
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  await driver.kill(ctx, signal);
  if (rec.state === 'paused' && signal === 'SIGKILL') await driver.resume(ctx).catch(() => undefined);
  engine.event(rec, 'kill', { signal });
}
