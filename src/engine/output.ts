import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';
import { readLogs, type LogLine } from '../container/logs.js';
import { StateError } from '../common/errors.js';

export interface LogOptions {
  follow?: boolean;
  tail?: number;
  /** ms since the epoch: lines at or after it */
  since?: number;
  /** ms since the epoch: lines before it */
  until?: number;
  timestamps?: boolean;
  /**
   * docker's --details: each line's text starts with the log's extra attributes (the labels and env named by
   * the labels/env log-opts, `k=v,…`, sorted, query-escaped) and a space; without such options, just the space
   */
  details?: boolean;
}

/** Go's url.QueryEscape, which docker applies to the attributes --details prints. */
function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The attributes `logs --details` shows for an instance (docker's json-file labels/env options). */
export function logAttributes(rec: InstanceRecord): string {
  const attrs = new Map<string, string>();
  const log = rec.config.log;
  for (const k of log?.labels ?? []) {
    const v = rec.config.labels[k];
    if (v !== undefined) attrs.set(k, v);
  }
  for (const k of log?.env ?? []) {
    const e = rec.config.env.find((x) => x === k || x.startsWith(`${k}=`));
    if (e !== undefined) attrs.set(k, e.includes('=') ? e.slice(e.indexOf('=') + 1) : '');
  }
  return [...attrs.keys()]
    .sort()
    .map((k) => `${queryEscape(k)}=${queryEscape(attrs.get(k)!)}`)
    .join(',');
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
  if (rec.config.log?.driver === 'none')
    throw new StateError(
      `configured logging driver does not support reading: ${rec.name} was created with --log-driver none`,
    );
  const driver = engine.driver(rec.kind);
  const path = driver.logPath(engine.context(rec));
  if (opts.details) {
    const prefix = `${logAttributes(rec)} `;
    const sink = onLine;
    onLine = (l) => sink({ ...l, text: prefix + l.text });
  }
  const range = { tail: opts.tail, since: opts.since, until: opts.until };
  if (!opts.follow) {
    await readLogs(path, { ...range, follow: false }, onLine);
    return;
  }
  // Follow until the process exits: the driver's exit notification ends the reader, which drains what is left.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  // docker: following ends once --until has passed
  const untilTimer =
    opts.until !== undefined
      ? setTimeout(onAbort, Math.max(0, Math.min(opts.until - Date.now(), 2 ** 31 - 1)))
      : undefined;
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
    await readLogs(path, { ...range, follow: true, signal: stop.signal }, onLine);
  } finally {
    clearTimeout(untilTimer);
    stop.abort();
    signal?.removeEventListener('abort', onAbort);
    await exited;
  }
}
