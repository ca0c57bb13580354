/**
 * Healthchecks with docker's semantics, as a pure module: resolving the configuration (the image's HEALTHCHECK
 * merged with --health-* flags), applying one probe's result to an instance's health, and the probe loop with
 * the probe runner, the recorder and the clock injected. The detached per-instance monitor
 * (`hull system health-monitor ID`, ./lifecycle/health.ts) runs the loop today; a daemon can run the same
 * loop in-process.
 *
 * docker's rules: the status is `starting` until the first success (then `healthy`); a failure after the start
 * period adds to the failing streak, and `retries` consecutive ones make it `unhealthy`; a success resets the
 * streak. Failures during the start period do not count (a success there still makes it healthy). Each probe
 * is an exec in the instance with the timeout; the last 5 results are kept, output cut at 4 KiB.
 */
import type { HealthcheckConfig } from '../common/instance.js';
import { InvalidArgumentError } from '../common/errors.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One probe's result (docker's State.Health.Log entry); times in ms since the epoch. */
export interface HealthResult {
  start: number;
  end: number;
  exitCode: number;
  output: string;
}

/** An instance's health (docker's State.Health), kept on its record. */
export interface HealthState {
  status: HealthStatus;
  failingStreak: number;
  log: HealthResult[];
}

export const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, retries: 3 } as const;
/** docker keeps this many results */
export const HEALTH_LOG_SIZE = 5;
/** and this many bytes of a probe's output */
export const HEALTH_OUTPUT_MAX = 4096;

/** The healthcheck part of a create request (flags or an API body); durations in ms. */
export interface HealthcheckRequest {
  /** --health-cmd, as docker's ['CMD-SHELL', text], or a Test array */
  test?: string[];
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
  /** --no-healthcheck: none, whatever the image says */
  disable?: boolean;
}

/** The image config's Healthcheck (durations in ns). */
export interface ImageHealthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/**
 * The instance's healthcheck: the request's fields over the image's (docker merges them field by field), docker's
 * defaults for the rest; undefined when there is none (no test, a NONE test, or --no-healthcheck).
 */
export function resolveHealthcheck(
  image: ImageHealthcheck | undefined,
  req: HealthcheckRequest | undefined,
): HealthcheckConfig | undefined {
  const r = req ?? {};
  const given = r.test !== undefined || r.intervalMs !== undefined || r.timeoutMs !== undefined;
  if (r.disable) {
    if (given || r.startPeriodMs !== undefined || r.retries !== undefined)
      throw new InvalidArgumentError('--no-healthcheck conflicts with --health-* options: give one or the other');
    return undefined;
  }
  for (const [flag, v] of [
    ['--health-interval', r.intervalMs],
    ['--health-timeout', r.timeoutMs],
  ] as const) {
    // docker's minimum: 1ms (0 means the default)
    if (v !== undefined && v !== 0 && v < 1) throw new InvalidArgumentError(`invalid ${flag}: the minimum is 1ms`);
  }
  if (r.retries !== undefined && (!Number.isInteger(r.retries) || r.retries < 0))
    throw new InvalidArgumentError('invalid --health-retries: give a whole number, 0 or more');
  if (r.test !== undefined && r.test.length === 0)
    throw new InvalidArgumentError('invalid --health-cmd: give a command');
  const test = r.test ?? image?.Test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  if (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL')
    throw new InvalidArgumentError(`unsupported healthcheck test ${JSON.stringify(test)}: use CMD or CMD-SHELL`);
  if (test.length < 2 || test.slice(1).join('') === '')
    throw new InvalidArgumentError(`healthcheck test ${JSON.stringify(test)} has no command`);
  const ms = (ns: number | undefined) => (ns ? ns / 1e6 : undefined);
  return {
    test: [...test],
    intervalMs: r.intervalMs || ms(image?.Interval) || HEALTH_DEFAULTS.intervalMs,
    timeoutMs: r.timeoutMs || ms(image?.Timeout) || HEALTH_DEFAULTS.timeoutMs,
    startPeriodMs: r.startPeriodMs || ms(image?.StartPeriod) || HEALTH_DEFAULTS.startPeriodMs,
    retries: r.retries || image?.Retries || HEALTH_DEFAULTS.retries,
  };
}

/** The argv a probe execs: CMD's as is, CMD-SHELL's through /bin/sh -c (docker's default shell). */
export function probeCommand(hc: HealthcheckConfig): string[] {
  return hc.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', hc.test.slice(1).join(' ')] : hc.test.slice(1);
}

/** The health an instance starts each run with (docker keeps the log across starts). */
export function startingHealth(prev?: HealthState | null): HealthState {
  return { status: 'starting', failingStreak: 0, log: prev?.log ?? [] };
}

/**
 * One probe's result applied to the health (a new object; the input is not changed). `startedAt` is when the
 * instance's current run began: failures within the start period after it do not count.
 */
export function applyHealthResult(
  prev: HealthState | null | undefined,
  result: HealthResult,
  hc: HealthcheckConfig,
  startedAt: number,
): HealthState {
  const cur = prev ?? startingHealth();
  const log = [...cur.log, { ...result, output: cutOutput(result.output) }].slice(-HEALTH_LOG_SIZE);
  if (result.exitCode === 0) return { status: 'healthy', failingStreak: 0, log };
  if (cur.status === 'starting' && result.start - startedAt < hc.startPeriodMs) return { ...cur, log };
  const failingStreak = cur.failingStreak + 1;
  return { status: failingStreak >= hc.retries ? 'unhealthy' : cur.status, failingStreak, log };
}

function cutOutput(s: string): string {
  const b = Buffer.from(s);
  return b.length <= HEALTH_OUTPUT_MAX ? s : b.subarray(0, HEALTH_OUTPUT_MAX).toString();
}

/** What a probe runner returns: the exit code (-1 when it could not run or timed out) and its output. */
export interface ProbeOutcome {
  exitCode: number;
  output: string;
}

/**
 * Run one probe through `exec` with the timeout: a probe that does not finish in time is a failure with docker's
 * message (exit code -1); one that cannot run (the exec fails) is a failure with the error as output.
 */
export async function runProbe(
  hc: HealthcheckConfig,
  exec: (argv: string[], signal: AbortSignal) => Promise<ProbeOutcome>,
  now: () => number = Date.now,
): Promise<HealthResult> {
  const start = now();
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve({ exitCode: -1, output: `Health check exceeded timeout (${formatMs(hc.timeoutMs)})` });
    }, hc.timeoutMs);
  });
  try {
    const out = await Promise.race([
      exec(probeCommand(hc), ac.signal).catch((e: unknown) => ({ exitCode: -1, output: (e as Error).message })),
      timedOut,
    ]);
    return { start, end: now(), exitCode: out.exitCode, output: out.output };
  } finally {
    clearTimeout(timer);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** What the probe loop needs from its host: all of it injected, so a CLI monitor and a daemon share the loop. */
export interface HealthLoopDeps {
  hc: HealthcheckConfig;
  /** run one probe (an exec in the instance) */
  probe: () => Promise<HealthResult>;
  /**
   * record a result (atomically, with the store's lock); returns the new health and the previous status, or null
   * when the instance is no longer in the run this loop serves (stopped, restarted, removed): the loop ends
   */
  record: (r: HealthResult) => Promise<{ prev: HealthStatus; next: HealthState } | null>;
  /** a status change (docker's `health_status: healthy|unhealthy` event) */
  changed: (status: HealthStatus) => void;
  /** whether to skip this round (a paused instance is not probed) */
  skip?: () => Promise<boolean>;
  /** wait, or end early when the signal aborts */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  signal: AbortSignal;
}

/** The probe loop: every interval (the first after one interval, as docker), until the signal or the recorder ends it. */
export async function healthLoop(d: HealthLoopDeps): Promise<void> {
  for (;;) {
    await d.sleep(d.hc.intervalMs, d.signal);
    if (d.signal.aborted) return;
    if (d.skip && (await d.skip())) continue;
    const result = await d.probe();
    if (d.signal.aborted) return;
    const rec = await d.record(result);
    if (!rec) return;
    if (rec.next.status !== rec.prev) d.changed(rec.next.status);
  }
}

/** A sleep that ends early when the signal aborts (the default for healthLoop's `sleep`). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
