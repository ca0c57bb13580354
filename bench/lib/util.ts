/** Helpers the benchmarks share: running and timing commands, medians and percentiles. */
import { spawnSync } from 'node:child_process';

/** Runs a command; throws with its stderr when it fails; returns its stdout. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Milliseconds `run` takes. */
export function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  run(cmd, args, env);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/** `hull run` arguments that put the host's binaries (and their libraries, Debian's merged /usr) into busybox. */
export const HOST_BINS = [
  '-v',
  '/usr:/usr:ro',
  '-v',
  '/lib:/lib:ro',
  '-v',
  '/lib64:/lib64:ro',
  '-v',
  '/etc/ld.so.cache:/etc/ld.so.cache:ro',
];

/** hull's CLI (hullEntry: dist/hull.mjs) on one root: throws with its stderr when it fails; returns its stdout. */
export function hullOn(hullEntry: string, root: string): (...args: string[]) => string {
  return (...args) => {
    const r = spawnSync(process.execPath, [hullEntry, '--root', root, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`hull ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
}
