import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { startInstance } from './start.js';
import { stopInstance } from './stop.js';

/** restart: stop (if running) then start. */
export async function restartInstance(
  engine: Engine,
  rec: InstanceRecord,
  timeoutSec?: number,
): Promise<InstanceRecord> {
  const stopped = await stopInstance(engine, rec, timeoutSec);
  const r = await startInstance(engine, stopped ?? rec);
  engine.event(r, 'restart');
  return r;
}
