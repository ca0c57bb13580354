/**
 * Unit tier: the healthcheck module (src/engine/health.ts) — docker's merge of HEALTHCHECK and --health-*
 * flags, the status rules (starting, healthy, unhealthy after retries, the start period), the 5-entry log with
 * output cut at 4 KiB, probe timeouts, and the loop with its clock and runner injected; and the store's health
 * column (added in place to a root made before it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  applyHealthResult,
  healthLoop,
  probeCommand,
  resolveHealthcheck,
  runProbe,
  startingHealth,
  type HealthResult,
  type HealthState,
} from '../src/engine/health.js';
import type { HealthcheckConfig } from '../src/common/instance.js';
import { StateStore } from '../src/engine/store.js';
import { parseGoDuration } from '../src/common/parse.js';

const hc = (over: Partial<HealthcheckConfig> = {}): HealthcheckConfig => ({
  test: ['CMD-SHELL', 'true'],
  intervalMs: 1000,
  timeoutMs: 1000,
  startPeriodMs: 0,
  retries: 3,
  ...over,
});
const result = (start: number, exitCode: number, output = ''): HealthResult => ({
  start,
  end: start + 1,
  exitCode,
  output,
});

test('resolveHealthcheck: defaults, the image config (ns), flags over the image field by field, NONE and --no-healthcheck', () => {
  assert.equal(resolveHealthcheck(undefined, undefined), undefined);
  assert.deepEqual(resolveHealthcheck(undefined, { test: ['CMD-SHELL', 'curl x'] }), {
    test: ['CMD-SHELL', 'curl x'],
    intervalMs: 30_000,
    timeoutMs: 30_000,
    startPeriodMs: 0,
    retries: 3,
  });
  const image = { Test: ['CMD', 'check'], Interval: 5e9, Timeout: 2e9, StartPeriod: 1e9, Retries: 4 };
  assert.deepEqual(resolveHealthcheck(image, undefined), {
    test: ['CMD', 'check'],
    intervalMs: 5000,
    timeoutMs: 2000,
    startPeriodMs: 1000,
    retries: 4,
  });
  assert.deepEqual(resolveHealthcheck(image, { intervalMs: 250, retries: 1 }), {
    test: ['CMD', 'check'],
    intervalMs: 250,
    timeoutMs: 2000,
    startPeriodMs: 1000,
    retries: 1,
  });
  assert.equal(resolveHealthcheck({ Test: ['NONE'] }, undefined), undefined);
  assert.equal(resolveHealthcheck(image, { disable: true }), undefined);
  assert.throws(() => resolveHealthcheck(image, { disable: true, retries: 2 }), /--no-healthcheck conflicts/);
  assert.throws(() => resolveHealthcheck(undefined, { test: ['CMD-SHELL', 'x'], intervalMs: 0.5 }), /minimum is 1ms/);
  assert.throws(() => resolveHealthcheck({ Test: ['WHAT', 'x'] }, undefined), /use CMD or CMD-SHELL/);
  assert.throws(() => resolveHealthcheck({ Test: ['CMD'] }, undefined), /has no command/);
});

test('probeCommand: CMD as is, CMD-SHELL through /bin/sh -c', () => {
  assert.deepEqual(probeCommand(hc({ test: ['CMD', 'a', 'b c'] })), ['a', 'b c']);
  assert.deepEqual(probeCommand(hc({ test: ['CMD-SHELL', 'a && b'] })), ['/bin/sh', '-c', 'a && b']);
});

test('parseGoDuration: docker flag durations in ms', () => {
  assert.equal(parseGoDuration('30s', 'f'), 30_000);
  assert.equal(parseGoDuration('1m30s', 'f'), 90_000);
  assert.equal(parseGoDuration('500ms', 'f'), 500);
  assert.equal(parseGoDuration('0', 'f'), 0);
  assert.throws(() => parseGoDuration('30', '--health-interval'), /invalid --health-interval "30"/);
  assert.throws(() => parseGoDuration('-1s', 'f'), /invalid f/);
});

test('status rules: healthy after one success, unhealthy after `retries` failures, a success resets the streak', () => {
  const c = hc({ retries: 2 });
  let h: HealthState = startingHealth();
  h = applyHealthResult(h, result(10, 1), c, 0);
  assert.deepEqual([h.status, h.failingStreak], ['starting', 1]);
  h = applyHealthResult(h, result(20, 1), c, 0);
  assert.deepEqual([h.status, h.failingStreak], ['unhealthy', 2]);
  h = applyHealthResult(h, result(30, 0), c, 0);
  assert.deepEqual([h.status, h.failingStreak], ['healthy', 0]);
  h = applyHealthResult(h, result(40, 1), c, 0);
  assert.deepEqual([h.status, h.failingStreak], ['healthy', 1]);
  h = applyHealthResult(h, result(50, -1), c, 0);
  assert.deepEqual([h.status, h.failingStreak], ['unhealthy', 2]);
});

test('start period: failures in it do not count while starting; a success in it counts; after it they count', () => {
  const c = hc({ retries: 1, startPeriodMs: 100 });
  let h = applyHealthResult(null, result(1050, 1), c, 1000);
  assert.deepEqual([h.status, h.failingStreak], ['starting', 0]);
  h = applyHealthResult(h, result(1150, 1), c, 1000);
  assert.deepEqual([h.status, h.failingStreak], ['unhealthy', 1]);
  const ok = applyHealthResult(null, result(1010, 0), c, 1000);
  assert.equal(ok.status, 'healthy');
  // once healthy, a failure in the start period counts (docker checks the period only while starting)
  assert.equal(applyHealthResult(ok, result(1020, 1), c, 1000).status, 'unhealthy');
});

test('the log keeps the last 5 results, output cut at 4 KiB; a new run starts over but keeps the log', () => {
  let h: HealthState | null = null;
  for (let i = 0; i < 7; i++) h = applyHealthResult(h, result(i, 0, i === 6 ? 'x'.repeat(5000) : String(i)), hc(), 0);
  assert.deepEqual(
    h!.log.map((l) => l.start),
    [2, 3, 4, 5, 6],
  );
  assert.equal(h!.log.at(-1)!.output.length, 4096);
  const again = startingHealth(h);
  assert.deepEqual([again.status, again.failingStreak, again.log.length], ['starting', 0, 5]);
});

test('runProbe: exit code and output; a timeout is -1 with docker message; a failed exec is -1 with the error', async () => {
  let t = 0;
  const now = () => (t += 5);
  const ok = await runProbe(hc(), async (argv) => ({ exitCode: 0, output: argv.join(' ') }), now);
  assert.deepEqual(ok, { start: 5, end: 10, exitCode: 0, output: '/bin/sh -c true' });
  let aborted = false;
  const slow = await runProbe(hc({ timeoutMs: 10 }), (_argv, signal) => {
    signal.addEventListener('abort', () => {
      aborted = true;
    });
    return new Promise(() => undefined);
  });
  assert.deepEqual([slow.exitCode, slow.output, aborted], [-1, 'Health check exceeded timeout (10ms)', true]);
  const broken = await runProbe(hc(), async () => {
    throw new Error('cannot exec: it stopped');
  });
  assert.deepEqual([broken.exitCode, broken.output], [-1, 'cannot exec: it stopped']);
});

test('healthLoop: waits an interval before each probe, reports status changes, skips rounds, ends when told', async () => {
  const c = hc({ retries: 1, intervalMs: 7 });
  const codes = [1, 1, 0, 0];
  const slept: number[] = [];
  const changes: string[] = [];
  let state: HealthState | null = null;
  let probes = 0;
  let rounds = 0;
  const ac = new AbortController();
  await healthLoop({
    hc: c,
    signal: ac.signal,
    sleep: async (ms) => {
      slept.push(ms);
    },
    skip: async () => ++rounds === 2, // the second round is skipped (a paused instance)
    probe: async () => result(probes, codes[probes++]!),
    record: async (r) => {
      if (probes > codes.length - 1) return null; // the run is over after the last result
      const prev = state?.status ?? 'starting';
      state = applyHealthResult(state, r, c, 0);
      return { prev, next: state };
    },
    changed: (s) => changes.push(s),
  });
  assert.equal(probes, 4);
  assert.deepEqual(slept, [7, 7, 7, 7, 7]);
  assert.deepEqual(changes, ['unhealthy', 'healthy']);
  // an aborted signal ends it after the sleep, without a probe
  ac.abort();
  let more = 0;
  await healthLoop({
    hc: c,
    signal: ac.signal,
    sleep: async () => undefined,
    probe: async () => result(more++, 0),
    record: async () => null,
    changed: () => undefined,
  });
  assert.equal(more, 0);
});

test('the store keeps health on the record; a root made before the column gets it in place', () => {
  const old = mkdtempSync(join(tmpdir(), 'hull-test-health-store-'));
  try {
    const db = new Database(join(old, 'hull.db'));
    db.exec(`CREATE TABLE instances (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, state TEXT NOT NULL,
      image TEXT NOT NULL, image_id TEXT NOT NULL, config TEXT NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER,
      finished_at INTEGER, exit_code INTEGER, exit_reason TEXT, oom_killed INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0,
      supervisor_pid INTEGER NOT NULL DEFAULT 0, restart_count INTEGER NOT NULL DEFAULT 0, stopped_by_user INTEGER NOT NULL DEFAULT 0)`);
    db.prepare(`INSERT INTO instances (id, name, kind, state, image, image_id, config, created_at, started_at)
      VALUES (?, 'before', 'container', 'running', 'busybox', 'sha256:x', '{}', 1, 5)`).run('d'.repeat(64));
    db.close();
    const s = new StateStore(old);
    const id = 'd'.repeat(64);
    assert.equal(s.get(id)?.health, null);
    const c = hc({ retries: 1 });
    const done = s.updateHealth(id, (cur) => applyHealthResult(cur.health, result(10, 1, 'no'), c, cur.startedAt ?? 0));
    assert.equal(done?.prev.health, null);
    assert.equal(done?.next.status, 'unhealthy');
    assert.deepEqual(s.get(id)?.health, { status: 'unhealthy', failingStreak: 1, log: [result(10, 1, 'no')] });
    assert.equal(
      s.updateHealth(id, () => null),
      null,
    );
    s.patch(id, { health: startingHealth(s.get(id)!.health) });
    assert.equal(s.get(id)?.health?.status, 'starting');
    s.close();
  } finally {
    rmSync(old, { recursive: true, force: true });
  }
});
