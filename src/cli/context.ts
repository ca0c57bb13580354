import { Engine, DEFAULT_ROOT } from '../engine/engine.js';
import { restoreAfterBoot } from '../engine/lifecycle/boot.js';
import { removeOrphanedBuildSteps } from '../engine/build/orphans.js';
import { trace } from '../common/trace.js';
import { checkAfterOpen, checkBeforeOpen } from '../engine/recover.js';
import { hullEnv } from '../common/env.js';

/** Global state of one CLI invocation: the root and a lazily opened engine. */
export interface CliContext {
  root: string;
  /**
   * The engine, opened on first use. Unless `unchecked` (hull system recover, the supervisors' exit command), a
   * root whose state database is lost, empty or does not record its instances is refused (engine/recover.ts).
   */
  engine(opts?: { unchecked?: boolean }): Promise<Engine>;
  /** the exit status the process should end with */
  exitCode: number;
  /** the command may give the root's space reserve back on a full disk (see Engine's mayUseReserve) */
  mayUseReserve: boolean;
}

/**
 * The commands that list, stop and remove things: on a full disk they may use the root's space reserve, so that
 * the user can free space with hull itself. Commands that add things (run, build, pull, …) may not.
 */
const FREEING_COMMANDS = new Set([
  'ps',
  'inspect',
  'logs',
  'top',
  'stats',
  'wait',
  'attach',
  'port',
  'events',
  'stop',
  'kill',
  'unpause',
  'exec',
  'rm',
  'container prune',
  'container rm',
  'images',
  'image ls',
  'image inspect',
  'history',
  'rmi',
  'image rm',
  'image prune',
  'builder prune',
  'network ls',
  'network inspect',
  'network rm',
  'network prune',
  'network disconnect',
  'system info',
  'system df',
  'system prune',
  'system instance-exited',
  'system recover',
  'console',
]);

/** Whether a command (its path without "hull", e.g. "image prune") may use the space reserve. */
export function mayUseReserve(commandPath: string): boolean {
  return FREEING_COMMANDS.has(commandPath);
}

export function createContext(rootFlag: string | undefined): CliContext {
  const root = rootFlag ?? hullEnv('HULL_ROOT') ?? DEFAULT_ROOT;
  let engine: Engine | undefined;
  const ctx: CliContext = {
    root,
    exitCode: 0,
    mayUseReserve: false,
    async engine(opts = {}) {
      if (!engine) {
        const entry = process.argv[1] ?? '';
        if (!opts.unchecked) checkBeforeOpen(root);
        const opened = new Engine({ root, self: [process.execPath, entry], mayUseReserve: ctx.mayUseReserve });
        try {
          if (!opts.unchecked) checkAfterOpen(opened);
        } catch (e) {
          opened.close();
          throw e;
        }
        engine = opened;
        trace('engine: store opened');
        await restoreAfterBoot(engine);
        trace('engine: boot checked');
        // step containers of a build that was killed (kill -9): nobody else would remove them
        await removeOrphanedBuildSteps(engine);
      }
      return engine;
    },
  };
  return ctx;
}
