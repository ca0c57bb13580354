import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';
import { readLogs, type LogLine } from '../container/logs.js';

export interface LogOptions {
  follow?: boolean;
  tail?: number;
  since?: number;
  timestamps?: boolean;
}

/**
 * Read an instance's logs; with follow, keep going until the instance stops running (then drain what is
 * left and return) or the caller aborts.
 */
export async function instanceLogs(
  engine: Engine,
  rec: InstanceRecord,
  opts: LogOptions,
  onLine: (l: LogLine) => void,
  signal?: AbortSignal,
): Promise<void> {
  const driver = engine.driver(rec.kind);
  const path = driver.logPath(engine.context(rec));
  if (!opts.follow) {
    await readLogs(path, { tail: opts.tail, since: opts.since, follow: false }, onLine);
    return;
  }
  // Follow until the process exits: the driver's exit notification ends the reader, which drains what is left.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const exited = (async () => {
    const cur = engine.store.get(rec.id);
    if (
      cur &&
      (cur.state === 'running' || cur.state === 'paused' || cur.state === 'created') &&
      !engine.observedExit(cur)
    ) {
      await driver.waitExit(engine.context(cur), stop.signal).catch(() => undefined);
    }
    stop.abort();
  })();
  try {
    await readLogs(path, { tail: opts.tail, since: opts.since, follow: true, signal: stop.signal }, onLine);
  } finally {
    stop.abort();
    signal?.removeEventListener('abort', onAbort);
    await exited;
  }
}
