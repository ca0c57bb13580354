/**
 * HULL_TRACE=1 prints the time since the process started at named points on hull's hot paths, to stderr.
 * Costs one environment lookup when off.
 */
import { hullEnv } from './env.js';
const on = !!hullEnv('HULL_TRACE');

export function trace(label: string): void {
  if (on) process.stderr.write(`[hull trace] ${performance.now().toFixed(1).padStart(7)} ms  ${label}\n`);
}
