import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { handleExit, refresh } from './exit.js';
import { trace } from '../../common/trace.js';

/**
 * wait: block until the instance is not running, then give its exit code. For a created instance,
 * waits for it to start and exit, like docker.
 */
export async function waitInstance(engine: Engine, ref: InstanceRecord, signal?: AbortSignal): Promise<number> {
  for (let first = true; ; first = false) {
    const rec = await refresh(engine, ref);
    if (!rec) return ref.exitCode ?? 0;
    if (rec.state === 'exited') return rec.exitCode ?? 0;
    if (rec.state === 'running' || rec.state === 'paused') {
      const info = await engine.driver(rec.kind).waitExit(engine.context(rec), signal);
      await handleExit(engine, rec, info);
      return info.exitCode;
    }
    if (first) trace('wait: waiting for the start');
    await new Promise((r) => setTimeout(r, 100));
    signal?.throwIfAborted();
  }
}
