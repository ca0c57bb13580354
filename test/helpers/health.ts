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

/**
 * Pids of the detached health monitors of an instance (`hull system health-monitor ID`). A monitor's probe
 * forks (runc exec): for a moment the child has its parent's command line, so children of a monitor are not
 * counted as monitors.
 */
export function monitors(id: string): number[] {
  const found = new Map<number, number>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('health-monitor') || !argv.includes(id)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      found.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  return [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid);
}
