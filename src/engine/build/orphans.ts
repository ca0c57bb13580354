/**
 * The step containers of `hull build` (RUN) belong to the build process that made them: their labels
 * name it by pid and start time (a pid alone can be reused). A build killed outright (kill -9, OOM) leaves
 * its step container running or stopped; the next hull command, whatever it is, removes the step
 * containers whose build process is gone, as it reconciles other interrupted work.
 */
import { processAlive, processStartTime, sameProcessAlive } from '../../host/proc.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { removeInstance } from '../lifecycle/remove.js';

export const BUILD_PID_LABEL = 'hull.build.pid';
export const BUILD_START_LABEL = 'hull.build.start';

/** The labels a step container of this process carries. */
export function buildStepLabels(): Record<string, string> {
  return { [BUILD_PID_LABEL]: String(process.pid), [BUILD_START_LABEL]: processStartTime(process.pid) ?? '' };
}

/** True for a step container whose build process has gone (never for one of this process). */
export function isOrphanedBuildStep(rec: InstanceRecord): boolean {
  const pid = Number(rec.config.labels?.[BUILD_PID_LABEL]);
  if (!pid) return false;
  if (pid === process.pid) return false;
  const start = rec.config.labels?.[BUILD_START_LABEL];
  // records made before the start time was labelled: the pid alone
  if (!start) return !processAlive(pid);
  return !sameProcessAlive(pid, start);
}

/** Remove the step containers of builds that died. Returns how many went. */
export async function removeOrphanedBuildSteps(engine: Engine): Promise<number> {
  let n = 0;
  for (const rec of engine.store.list()) {
    if (!isOrphanedBuildStep(rec)) continue;
    await removeInstance(engine, rec, { force: true }).then(
      () => {
        n++;
      },
      () => undefined,
    );
  }
  return n;
}
