/** What the healthcheck tests read of an instance: docker's State.Health, and hull's detached health monitors. */
import { readdirSync, readFileSync } from 'node:fs';
import type { HullRoot } from './hull.js';

export interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

/** The instance's State.Health from `hull inspect` (undefined without a healthcheck). */
export async function health(root: HullRoot, ref: string): Promise<Health | undefined> {
  return ((await root.inspect(ref)).State as { Health?: Health }).Health;
}

/** Pids of the detached health monitors of an instance (`hull system health-monitor ID`). */
export function monitors(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv.includes('health-monitor') && argv.includes(id)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}
