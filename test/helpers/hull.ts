/**
 * End-to-end helpers: run the built CLI (dist/hull.mjs) against a private root, the way a user would.
 *
 *   const root = new HullRoot('lifecycle');          // /tmp/hull-test-lifecycle-XXXX
 *   const r = await root.hull('run', '--rm', 'busybox', 'true');   // { code, stdout, stderr }
 *   ...
 *   test('leaves nothing behind', () => root.cleanupAndCheck());   // rm -f all, then the leak check
 *   after(() => root.dispose());                                    // best effort, removes the dir
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkLeaks, formatLeaks, readMountPoints } from './leaks.js';

export const REPO = resolve(import.meta.dirname, '../..');
/**
 * `--network X` when HULL_TEST_NETWORK=X, for tests whose containers need no particular network: the cgroup v2
 * guest tier (test/cgroup-v2-guest.test.ts) sets `none`, as its guest has no CNI plugins.
 */
export const TEST_NETWORK: string[] = process.env.HULL_TEST_NETWORK ? ['--network', process.env.HULL_TEST_NETWORK] : [];
export const DIST = join(REPO, 'dist', 'hull.mjs');

export interface HullResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** wall time of the command in ms */
  ms: number;
}

export interface HullOptions {
  /** text written to the command's stdin (then closed); without it stdin is /dev/null */
  input?: string;
  /** extra environment (merged over the root's) */
  env?: Record<string, string | undefined>;
  /** kill the command after this many ms (default 60 s) */
  timeoutMs?: number;
}

let built = false;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return newest;
}

/** Build dist/hull.mjs when it is missing or older than any file of src/ (once per test process). */
export function ensureBuilt(): void {
  if (built) return;
  // src/ makes the CLI's bundles, web/ the console's files (dist/console): one build makes both
  const stale =
    !existsSync(DIST) ||
    statSync(DIST).mtimeMs < Math.max(newestMtime(join(REPO, 'src')), newestMtime(join(REPO, 'web', 'src')));
  if (stale) {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'build.mjs')], { cwd: REPO, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stderr}${r.stdout}`);
  }
  built = true;
}

/** The environment hull commands get: the test's own, minus the variables that steer hull. */
function baseEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['HULL_ROOT', 'HULL_BOOT_ID', 'HULL_RUNTIME', 'HULL_DEBUG']) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Run `node dist/hull.mjs --root ROOT ARGS...`. Never rejects on a non-zero exit; rejects on a timeout. */
export function runHull(root: string, args: string[], opts: HullOptions = {}): Promise<HullResult> {
  ensureBuilt();
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    // '--' as bin/hull does: node 20 would act on a script argument named --env-file (nodejs/node#54232)
    const child = spawn(process.execPath, ['--', DIST, '--root', root, ...args], {
      env: baseEnv(opts.env ?? {}),
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`hull ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Poll `fn` until it returns a truthy value (returned) or the time is up (throws with the last value). */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One `hull inspect` entry (docker's container document; the fields the tests read). */
export interface Inspect {
  Id: string;
  /** "/name", as docker */
  Name: string;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    OOMKilled: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    [k: string]: unknown;
  };
  RestartCount: number;
  Config: Record<string, unknown>;
  HostConfig: Record<string, unknown>;
  /** hull's own facts: kind, supervisor, the driver's details */
  Hull: { Kind: string; SupervisorPid: number; [k: string]: unknown };
  [k: string]: unknown;
}

/** A private hull root (/tmp/hull-test-<name>-XXXX) and the commands that run against it. */
export class HullRoot {
  readonly dir: string;
  /** environment every command of this root gets (e.g. HULL_BOOT_ID); change it to affect later commands */
  readonly env: Record<string, string | undefined>;

  constructor(name: string, env: Record<string, string | undefined> = {}) {
    ensureBuilt();
    this.dir = mkdtempSync(`/tmp/hull-test-${name}-`);
    this.env = { ...env };
  }

  hull(...args: string[]): Promise<HullResult> {
    return runHull(this.dir, args, { env: this.env });
  }

  hullWith(opts: HullOptions, ...args: string[]): Promise<HullResult> {
    return runHull(this.dir, args, { ...opts, env: { ...this.env, ...(opts.env ?? {}) } });
  }

  /** Run and insist on exit status 0; returns stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.hull(...args);
    if (r.code !== 0)
      throw new Error(`hull ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  async inspect(ref: string): Promise<Inspect> {
    const out = JSON.parse(await this.ok('inspect', ref)) as Inspect[];
    if (out.length !== 1) throw new Error(`inspect ${ref}: ${out.length} entries`);
    return out[0]!;
  }

  /** Full ids of every instance the store lists. */
  async ids(): Promise<string[]> {
    return (await this.ok('ps', '-a', '-q', '--no-trunc')).split('\n').filter(Boolean);
  }

  /** Every instance id this root ever had (from the event log: each instance has a create event). */
  async everyId(): Promise<string[]> {
    const r = await this.hull('events', '--since', '0', '--no-follow', '--format', 'json');
    const ids = new Set<string>();
    // instance ids only (64 hex digits): volumes, pools and networks have short names (`d1`) that would match
    // unrelated iptables lines and process command lines
    for (const e of jsonLines<{ Actor: { ID: string } }>(r.stdout))
      if (/^[0-9a-f]{64}$/.test(e.Actor.ID)) ids.add(e.Actor.ID);
    if (existsSync(join(this.dir, 'containers'))) for (const d of readdirSync(join(this.dir, 'containers'))) ids.add(d);
    return [...ids];
  }

  /** `hull rm -f` of every instance, then the leak check; throws with a list of what is left. */
  async cleanupAndCheck(): Promise<void> {
    const ids = await this.ids();
    if (ids.length > 0) {
      const r = await this.hull('rm', '-f', ...ids);
      if (r.code !== 0) throw new Error(`rm -f of everything failed (${r.code}): ${r.stderr}`);
    }
    const leaks = await checkLeaks(this.dir, await this.everyId(), () => this.ids());
    if (leaks.length > 0) throw new Error(`hull root ${this.dir} left things behind:\n${formatLeaks(leaks)}`);
  }

  /** Best-effort teardown for after(): rm -f everything, then remove the directory (only when nothing is mounted under it). */
  async dispose(): Promise<void> {
    try {
      const ids = await this.ids();
      if (ids.length > 0) await this.hull('rm', '-f', ...ids);
    } catch {
      /* the root may be broken; go on */
    }
    const mounted = readMountPoints().filter((m) => m === this.dir || m.startsWith(this.dir + '/'));
    for (const m of mounted.sort().reverse()) spawnSync('umount', ['-l', m]);
    if (readMountPoints().some((m) => m.startsWith(this.dir + '/'))) return; // never rm -rf through a mount
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The instance ids (64 hex) in a text, e.g. `run -d` output. */
export function idsIn(text: string): string[] {
  return text.match(/\b[0-9a-f]{64}\b/g) ?? [];
}

/** Command lines (NUL-separated argv joined by spaces) of the live processes, by pid. */
function processCommandLines(): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8'); // empty for zombies
      if (cmd) out.set(Number(p), cmd.replace(/\0/g, ' '));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Wait until an instance's exit has been dealt with completely: its supervisor (conmon or the VM monitor) is
 * gone, and so is the exit command it ran (`hull system instance-exited ID`, which records the exit and applies
 * the restart policy). After that, nothing more happens to the instance by itself, so a test can check what
 * must not happen (another restart, a second die event) without waiting for an arbitrary time.
 */
export async function exitHandled(id: string, timeoutMs = 30_000): Promise<void> {
  const busy = (): string[] =>
    [...processCommandLines()]
      .filter(
        ([pid, cmd]) =>
          pid !== process.pid && cmd.includes(id) && /conmon|instance-exited|vm-monitor|monitor-main/.test(cmd),
      )
      .map(([pid, cmd]) => `${pid}: ${cmd.slice(0, 120)}`);
  await waitFor(
    `the supervisor and exit command of ${id.slice(0, 12)} to finish`,
    () => busy().length === 0 || null,
    timeoutMs,
    50,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; still running: ${busy().join('; ')}`);
  });
}

/** The objects of JSON-lines output (docker's --format json for lists: one object per line). */
export function jsonLines<T>(out: string): T[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}
